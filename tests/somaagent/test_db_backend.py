"""The pool's wait for a connection tells a busy database from one that is gone (somaagent/db_backend).

A request waits one slice (1.5 s) for a pooled connection; then it waits on only if the
pool was busy. Gone: a host that takes connections and never answers (a lost host, a
dropped network: each attempt fails only after the connect timeout), so no attempt has
failed yet when the slice ends. Busy: a real PostgreSQL whose every connection is lent out.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from psycopg_pool import ConnectionPool, PoolTimeout

from somaagent.db_backend.base import FIRST_WAIT_SECONDS, _Reachability, _sliced_getconn

BOUND = 2.0  # seconds: the bound for refusing while the database is gone


@pytest.fixture
def silent_host() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


def _pool(conninfo: str, *, max_size: int, reach: _Reachability) -> ConnectionPool:
    # configure: what Django's backend hands the pool, through which it learns of new connections.
    pool = ConnectionPool(
        conninfo, min_size=1, max_size=max_size, timeout=10, open=False, configure=reach.connected
    )
    pool.open(wait=False)
    return pool


def test_a_host_that_never_answers_is_refused_after_one_slice(silent_host: int) -> None:
    reach = _Reachability()
    pool = _pool(
        f"host=127.0.0.1 port={silent_host} user=x dbname=x connect_timeout=5", max_size=4, reach=reach
    )
    try:
        started = time.monotonic()
        with pytest.raises(PoolTimeout):
            _sliced_getconn(pool, pool.getconn, reach)
        waited = time.monotonic() - started
        # Not the pool's whole timeout (10 s): nothing came although the pool had room to connect.
        assert waited < BOUND, waited
    finally:
        pool.close(timeout=0)


def _postgres_conninfo() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        pytest.skip("needs PostgreSQL (DATABASE_URL)")
    return url.replace("postgres://", "postgresql://", 1)


def test_a_busy_database_is_waited_for_past_the_first_slice() -> None:
    reach = _Reachability()
    pool = _pool(_postgres_conninfo(), max_size=2, reach=reach)
    try:
        pool.wait(timeout=10)
        lent = [pool.getconn(timeout=10), pool.getconn(timeout=10)]  # every connection it may open
        # Given back only after the first slice: a busy pool's waiter must still be waiting.
        timer = threading.Timer(FIRST_WAIT_SECONDS + 1.0, pool.putconn, args=[lent[0]])
        timer.start()
        conn = _sliced_getconn(pool, pool.getconn, reach)
        assert conn is lent[0]
        timer.join()
        pool.putconn(conn)
        pool.putconn(lent[1])
    finally:
        pool.close(timeout=0)
