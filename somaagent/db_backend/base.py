"""``ENGINE = "somaagent.db_backend"``: see the package's docstring."""

from __future__ import annotations

import select
import threading
import time
from typing import Any

from django.db.backends.postgresql import base
from psycopg import OperationalError, pq
from psycopg_pool import ConnectionPool, PoolTimeout

from somaagent.db_pool import celery_worker

# The first wait; then, unless the database looks gone, one more for the rest of the
# timeout. Not many short slices: each retry goes to the back of the pool's queue, and
# under a burst the unlucky waiters starved (a 5 s reply took 38 s to reach everyone).
FIRST_WAIT_SECONDS = 1.5
# Failed connection attempts this recent mean the database is unreachable, not busy.
DOWN_WINDOW_SECONDS = 10.0


class _Reachability:
    """When the pool last saw its count of failed connection attempts grow, and last connected."""

    def __init__(self) -> None:
        self._errors = 0
        self._failed_at = float("-inf")
        self.connected_at = float("-inf")
        self._lock = threading.Lock()

    def connected(self, conn: Any = None) -> None:
        """A new connection was opened (the pool's ``configure`` hook)."""
        self.connected_at = time.monotonic()

    def unreachable(self, pool: ConnectionPool) -> bool:
        errors = pool.get_stats().get("connections_errors", 0)
        now = time.monotonic()
        with self._lock:
            if errors > self._errors:
                self._errors, self._failed_at = errors, now
            return now - self._failed_at < DOWN_WINDOW_SECONDS

    def busy(self, pool: ConnectionPool, since: float) -> bool:
        """Whether a wait (begun at ``since``) that timed out was for a busy database.

        Busy: every connection the pool may open is open (or being opened) and lent
        out, or it opened one while we waited (the database answers; the new one went
        to a waiter ahead of us). Otherwise the pool had room to connect and no
        connection came in a whole wait: the database is not accepting connections.
        Failed attempts alone tell it too late or too seldom: the pool's background
        attempts back off (1, 2, 4, 8, 16 s…), and against a host that drops packets
        an attempt fails only at the connect timeout.
        """
        stats = pool.get_stats()
        return stats.get("pool_size", 0) >= stats.get("pool_max", 0) or self.connected_at >= since


def _sliced_getconn(
    pool: ConnectionPool, getconn: Any, reach: _Reachability, timeout: float | None = None
) -> Any:
    total = pool.timeout if timeout is None else timeout
    started = time.monotonic()
    try:
        return getconn(timeout=min(total, FIRST_WAIT_SECONDS))
    except PoolTimeout:
        left = total - (time.monotonic() - started)
        if left <= 0 or reach.unreachable(pool) or not reach.busy(pool, started):
            raise
    return getconn(timeout=left)


def _has_input(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def check_if_suspect(conn: Any) -> None:
    """The pool's check on lending a connection: a round trip only if it may be broken.

    An idle connection in the pool has nothing to read. A server that shut down,
    restarted or ended the session (``pg_terminate_backend``) sent its last message
    and closed the socket, which is then readable: that connection, or one whose
    state is not idle, gets psycopg's probe (an empty query), and one that fails
    it is replaced before it is handed out. Probing every connection cost a round
    trip per checkout (a turn checks out several): the 100-turn burst's first delta
    p95 went from 2.19 to 1.98 s without it (BENCHMARKS.md). A peer that vanished
    without a word is flagged on an idle connection by TCP keepalive (``db_pool``:
    about 16 s), which makes the socket report an error, so that one is probed too;
    within those seconds the statement itself notices (``tcp_user_timeout``).
    """
    pgconn = conn.pgconn
    try:
        suspect = (
            pgconn.status != pq.ConnStatus.OK
            or pgconn.transaction_status != pq.TransactionStatus.IDLE
            or _has_input(pgconn.socket)
        )
    except (OperationalError, OSError, ValueError):
        suspect = True
    if suspect:
        ConnectionPool.check_connection(conn)


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self) -> Any:
        pool = super().pool
        # A worker's turns and tasks wait out a short outage on the pool's whole timeout
        # (30 s) instead: failing them fast would only make the sweep redo them.
        if (
            pool is not None
            and not celery_worker()
            and pool.timeout > FIRST_WAIT_SECONDS
            and not getattr(pool, "_soma_sliced", False)
        ):
            reach = _Reachability()
            pool._soma_reach = reach
            original = pool.getconn
            pool.getconn = lambda timeout=None: _sliced_getconn(pool, original, reach, timeout)
            pool._soma_sliced = True
        if pool is not None and pool._check is ConnectionPool.check_connection:  # CONN_HEALTH_CHECKS
            pool._check = check_if_suspect
        return pool

    def _configure_connection(self, connection: Any) -> Any:
        # The pool calls this for each new connection: the database answered.
        pools = getattr(self, "_connection_pools", {})
        reach = getattr(pools.get(self.alias), "_soma_reach", None)
        if reach is not None:
            reach.connected()
        return super()._configure_connection(connection)  # type: ignore[misc]  # not in the stubs
