"""The PostgreSQL backend with a pool that tells a busy database from one that is gone.

Django's own backend, except for how a request waits for a pooled connection.
A burst of requests (a hundred users sending at once) may queue for the pool's
connections for several seconds, and should: answering 503 to a busy but
healthy database would drop messages people just sent. A database that went
away must be refused at once instead (``somaagent.project.db_unavailable``: 503 within
about two seconds). So a request waits 1.5 s for a connection, then asks the
pool whether its recent attempts to connect failed: if so it gives up with the
pool's timeout error (a ``django.db.OperationalError``), if not it waits once
more, for the rest of ``SOMA_DB_POOL_TIMEOUT_SECONDS``. While connections keep
failing, a request waits only the first 1.5 s.
"""
