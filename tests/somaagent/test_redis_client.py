"""The process's Redis clients open connections without redis-py's per-connection extras."""

from __future__ import annotations

import asyncio

import pytest
import redis.utils

from somaagent.redis_client import async_redis, sync_redis


def test_a_new_connection_neither_reads_package_metadata_nor_names_the_library(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """redis-py would read its own version from the installed package's metadata (file reads)
    for every new connection, then send it with CLIENT SETINFO (two round trips): in a burst
    that opens many connections at once, a tenth of the web process's CPU."""
    lookups: list[str] = []

    def counted() -> str:
        lookups.append("version")
        return "0"

    monkeypatch.setattr(redis.utils, "get_lib_version", counted)
    client = sync_redis()
    client.connection_pool.disconnect()  # the next command opens a new connection
    assert client.ping()

    async def ping_on_a_new_loop() -> bool:
        fresh = async_redis()  # a client (and pool) of this loop's own
        try:
            return bool(await fresh.ping())
        finally:
            await fresh.connection_pool.disconnect()

    assert asyncio.run(ping_on_a_new_loop())
    assert lookups == []
