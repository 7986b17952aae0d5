"""PostgreSQL connection pooling (psycopg_pool through Django's ``OPTIONS["pool"]``).

Persistent connections (``CONN_MAX_AGE``) belong to a thread. Under ASGI every
sync view runs in a thread made for that request, so each request opened a new
connection and left it to the garbage collector: slow (a connect per request)
and, under concurrency, past PostgreSQL's connection limit (500 errors in the
accept benchmark). A pool per process hands connections to whichever thread
needs one and takes them back when Django closes them (end of request, end of
task). Celery prefork children close the inherited pool and open their own.
"""

from __future__ import annotations

from typing import Any

from somaagent.config import env_float, env_int


def pooled(database: Any) -> Any:
    options: dict[str, Any] = dict(database.get("OPTIONS") or {})
    options["pool"] = {
        "min_size": env_int("SOMA_DB_POOL_MIN_SIZE", 1),
        "max_size": env_int("SOMA_DB_POOL_MAX_SIZE", 20),
        "timeout": env_float("SOMA_DB_POOL_TIMEOUT_SECONDS", 10.0),
    }
    # CONN_HEALTH_CHECKS makes the pool check a connection before handing it out.
    return {**database, "OPTIONS": options, "CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": True}
