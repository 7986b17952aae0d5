"""The PostgreSQL backend with a pool that tells a busy database from one that is gone.

Django's own backend, except for how a request waits for a pooled connection.
A burst of requests (a hundred users sending at once) may queue for the pool's
connections for several seconds, and should: answering 503 to a busy but
healthy database would drop messages people just sent. A database that went
away must be refused at once instead (``somaagent.project.db_unavailable``: 503 within
about two seconds). So a request waits 1.5 s for a connection, then asks the
pool whether it was busy: every connection it may open open and lent out, or a
new one opened meanwhile. If so it waits once more, for the rest of
``SOMA_DB_POOL_TIMEOUT_SECONDS``; if the pool had room to connect and no
connection came, or its recent attempts to connect failed, it gives up with the
pool's timeout error (a ``django.db.OperationalError``).

A connection is probed before it is lent only when the server may have ended it
(``check_if_suspect``: its socket has something to read), not on every checkout.
"""
