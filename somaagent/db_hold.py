"""How long a thread holds its database connection.

Django keeps one connection per thread. A worker runs hundreds of turns on as
many threads, each waiting seconds on a model between short bursts of SQL, so
a turn thread gives its connection back (``db_release``: to the PostgreSQL
pool, or closed for SQLite) before every long wait, and the process holds
only as many connections as are in use. A few long-lived threads (the turn
watcher, the delta writers) do SQL all the time and keep theirs
(``db_drop_if_broken`` replaces one only when it broke).
"""

from __future__ import annotations

from django.db import connections


def db_release() -> None:
    """Give back this thread's connections; the next query takes one again."""
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close()


def db_drop_if_broken() -> None:
    """Close this thread's connections that failed and no longer work, keep the others."""
    for conn in connections.all(initialized_only=True):
        if conn.connection is None:
            continue
        if conn.get_autocommit() != conn.settings_dict["AUTOCOMMIT"]:
            conn.close()
        elif conn.errors_occurred:
            if conn.is_usable():
                conn.errors_occurred = False
            else:
                conn.close()
