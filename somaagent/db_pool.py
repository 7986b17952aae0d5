"""PostgreSQL connection pooling (psycopg_pool through Django's ``OPTIONS["pool"]``).

Persistent connections (``CONN_MAX_AGE``) belong to a thread. Under ASGI every
sync view runs in a thread made for that request, so each request opened a new
connection and left it to the garbage collector: slow (a connect per request)
and, under concurrency, past PostgreSQL's connection limit (500 errors in the
accept benchmark). A pool per process hands connections to whichever thread
needs one and takes them back when Django closes them (end of request, end of
task). Celery prefork children close the inherited pool and open their own.
When the database goes away, requests are refused within about two seconds
(``somaagent.project.db_unavailable``) and the pool reconnects on its own when it returns.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from somaagent.environment import env_bool, env_float, env_int


def celery_worker() -> bool:
    """Whether this process is a Celery worker (``celery … worker``)."""
    return "worker" in sys.argv[1:] and os.path.basename(sys.argv[0]).startswith("celery")


def pooled(database: Any) -> Any:
    options: dict[str, Any] = dict(database.get("OPTIONS") or {})
    options["pool"] = {
        "min_size": env_int("SOMA_DB_POOL_MIN_SIZE", 1),
        "max_size": env_int("SOMA_DB_POOL_MAX_SIZE", 20),
        # How long a request may queue for a connection while the database is busy (a burst
        # of sends); a database that is gone is refused within a slice or two instead
        # (somaagent/db_backend). A worker's hundreds of turn threads wait longer.
        "timeout": env_float("SOMA_DB_POOL_TIMEOUT_SECONDS", 30.0 if celery_worker() else 10.0),
    }
    # A lost server is noticed in seconds, not at the kernel's TCP timeout (minutes): a new
    # connection gives up after 2 s, an idle one is probed, unacknowledged data aborts it.
    options.setdefault("connect_timeout", env_int("SOMA_DB_CONNECT_TIMEOUT_SECONDS", 2))
    options.setdefault("keepalives", 1)
    options.setdefault("keepalives_idle", 10)
    options.setdefault("keepalives_interval", 2)
    options.setdefault("keepalives_count", 3)
    options.setdefault("tcp_user_timeout", 5000)
    # Parameters travel apart from the statement (no quoting into SQL text on the client), and
    # a statement a connection has run this many times is prepared on it: PostgreSQL parses and
    # plans it once: an accept costs PostgreSQL about a quarter less CPU (2.7 -> 2.0 ms,
    # BENCHMARKS.md). Behind PgBouncer in transaction mode before 1.21, set the threshold to 0.
    options.setdefault("server_side_binding", env_bool("SOMA_DB_SERVER_SIDE_BINDING", True))
    threshold = env_int("SOMA_DB_PREPARE_THRESHOLD", 5)
    options.setdefault("prepare_threshold", threshold if threshold > 0 else None)
    # CONN_HEALTH_CHECKS makes the pool check a connection before lending it: a round trip only
    # for one the server may have ended (somaagent/db_backend: check_if_suspect).
    return {
        **database,
        "ENGINE": "somaagent.db_backend",
        "OPTIONS": options,
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": True,
    }
