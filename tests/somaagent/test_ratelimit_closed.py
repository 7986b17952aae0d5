"""Rate limits and the stream cap fail closed when Redis refuses a new client (issue 14 item 12):
a Redis server at ``maxclients`` answers a new connection with an error, and the limiter must
refuse (503), not let the request through."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import redis
import redis.asyncio as aioredis
from asgiref.sync import async_to_sync

from somaagent import ratelimit, stream_slots
from somaagent.errors import RateLimitUnavailable
from tests.servers import RedisServer


@pytest.fixture
def full_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    holder = redis.Redis(port=server.port)
    try:
        holder.config_set("maxclients", 1)  # the holder is the one client it takes
        yield server
    finally:
        holder.close()
        server.destroy()


def test_a_redis_out_of_clients_refuses_the_request(full_redis: RedisServer, monkeypatch) -> None:
    client = redis.Redis.from_url(full_redis.url, socket_timeout=2)
    with pytest.raises(redis.ConnectionError, match="max number of clients"):
        client.ping()  # the server really is full
    monkeypatch.setattr(ratelimit, "sync_redis", lambda: client)
    with pytest.raises(RateLimitUnavailable):
        ratelimit.rate_limit_hit(bucket="full", limit=5)


def test_a_stream_slot_is_refused_when_redis_is_out_of_clients(full_redis: RedisServer, monkeypatch) -> None:
    """The per-credential stream cap counts in Redis too: a full Redis refuses the stream (503)."""
    client = aioredis.Redis.from_url(full_redis.url, socket_timeout=2)
    monkeypatch.setattr(stream_slots, "async_redis", lambda: client)
    principal = SimpleNamespace(rate_limit_id="key:full")

    async def take() -> None:
        try:
            await stream_slots.stream_slot_take_async(principal)  # type: ignore[arg-type]
        finally:
            await client.aclose()

    with pytest.raises(RateLimitUnavailable):
        async_to_sync(take)()


def test_a_stream_slot_taken_by_a_plain_view_is_refused_too(full_redis: RedisServer, monkeypatch) -> None:
    """The SSE stream's opening takes its slot with the sync client: the same refusal (503)."""
    client = redis.Redis.from_url(full_redis.url, socket_timeout=2)
    monkeypatch.setattr(stream_slots, "sync_redis", lambda: client)
    with pytest.raises(RateLimitUnavailable):
        stream_slots.stream_slot_take(SimpleNamespace(rate_limit_id="key:full"))  # type: ignore[arg-type]
