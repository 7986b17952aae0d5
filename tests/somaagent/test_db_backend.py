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
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool, PoolTimeout

from somaagent.db_backend.base import FIRST_WAIT_SECONDS, _Reachability, _sliced_getconn, check_if_suspect

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


def _lend_counting_probes(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    probed: list[object] = []
    probe = ConnectionPool.check_connection

    def counting(conn: psycopg.Connection[Any]) -> None:
        probed.append(conn)
        probe(conn)

    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(counting))
    return probed


def test_a_healthy_idle_connection_is_lent_without_a_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = ConnectionPool(_postgres_conninfo(), min_size=1, max_size=1, open=False, check=check_if_suspect)
    pool.open(wait=True, timeout=10)
    try:
        probed = _lend_counting_probes(monkeypatch)
        for _ in range(3):
            with pool.connection(timeout=10) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        assert probed == []
    finally:
        pool.close(timeout=0)


def test_a_connection_the_server_ended_is_replaced_before_it_is_lent(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = ConnectionPool(_postgres_conninfo(), min_size=1, max_size=1, open=False, check=check_if_suspect)
    pool.open(wait=True, timeout=10)
    try:
        with pool.connection(timeout=10) as conn:
            ended = conn.info.backend_pid
        with psycopg.connect(_postgres_conninfo(), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [ended])
            wait_until_gone = time.monotonic() + 10
            while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [ended]).fetchone():
                assert time.monotonic() < wait_until_gone
                time.sleep(0.02)
        probed = _lend_counting_probes(monkeypatch)
        # The ended connection's socket is readable (the server's last word, then EOF): it is
        # probed, fails, and a new connection is lent instead.
        with pool.connection(timeout=10) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert conn.info.backend_pid != ended
        assert len(probed) == 1
    finally:
        pool.close(timeout=0)


def test_the_django_pool_uses_the_cheap_check() -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the pool is PostgreSQL's")
    # Django's backend asks for psycopg's probe (CONN_HEALTH_CHECKS); ours replaces it.
    pool = connection.pool  # type: ignore[attr-defined]  # PostgreSQL's wrapper has it
    assert pool is not None and pool._check is check_if_suspect
