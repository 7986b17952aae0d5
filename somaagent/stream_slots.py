"""How many streams one credential may hold open at once, across every web process.

Each open stream (SSE, WebSocket, an OpenAI-door completion) holds a Redis
connection and a coroutine; without a cap one API key could open thousands
and starve everyone else. A credential's open streams are members of one
sorted set in Redis, scored by when their lease ends: taking a slot drops the
expired members and adds one only under ``SOMA_MAX_STREAMS_PER_CREDENTIAL``
(one Lua script, atomic). A live stream renews its lease as its frames pass
(a heartbeat at least every ``SOMA_SSE_HEARTBEAT_SECONDS``); a process that
dies leaves members that expire with their lease, so nothing leaks for long.

Over the cap is 429 ``too_many_streams``. If Redis cannot be reached the cap
cannot be checked and the stream is refused (503), never let through.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import TypeVar

import redis
from django.conf import settings

from somaagent.errors import RateLimited, RateLimitUnavailable
from somaagent.identity.principal import Principal
from somaagent.redis_client import async_redis, key, sync_redis

T = TypeVar("T")

_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class TooManyStreams(RateLimited):
    code = "too_many_streams"


def lease_seconds() -> float:
    """Long enough for several heartbeats to renew it."""
    return max(60.0, 4 * settings.SOMA.sse_heartbeat_seconds)


@dataclass
class StreamSlot:
    bucket: str
    member: str
    renewed: float

    async def renew(self) -> None:
        self.renewed = time.monotonic()
        try:
            await async_redis().zadd(self.bucket, {self.member: time.time() + lease_seconds()}, xx=True)
        except redis.RedisError:
            pass  # the lease lasts several heartbeats; the next frame tries again

    async def release(self) -> None:
        try:
            await async_redis().zrem(self.bucket, self.member)
        except redis.RedisError:
            pass  # the member expires with its lease


@dataclass(frozen=True)
class _Take:
    """One attempt at a slot: the script's keys and arguments, and the slot it gives."""

    cap: int
    bucket: str
    member: str
    args: tuple[str | float, ...]  # the script's argv

    def slot(self, taken: object) -> StreamSlot:
        if not taken:
            raise TooManyStreams(
                f"This credential already holds {self.cap} open streams; close one first.",
                retry_after=5,
                details={"limit": self.cap},
            )
        return StreamSlot(bucket=self.bucket, member=self.member, renewed=time.monotonic())


def _take(principal: Principal) -> _Take | None:
    cap = settings.SOMA.max_streams_per_credential
    if cap <= 0:
        return None
    bucket = key("streams", principal.rate_limit_id)
    member = uuid.uuid4().hex
    now, lease = time.time(), lease_seconds()
    return _Take(cap, bucket, member, (now, cap, now + lease, member, int(lease) + 5))


UNCOUNTABLE = "Open streams cannot be counted right now; try again shortly."


def stream_slot_take(principal: Principal) -> StreamSlot | None:
    """A slot for one more open stream of this credential; None when streams are not capped.

    Sync (a plain view opening its stream); ``stream_slot_take_async`` from async code."""
    take = _take(principal)
    if take is None:
        return None
    try:
        taken = sync_redis().eval(_TAKE, 1, take.bucket, *take.args)
    except redis.RedisError as exc:
        raise RateLimitUnavailable(UNCOUNTABLE) from exc
    return take.slot(taken)


async def stream_slot_take_async(principal: Principal) -> StreamSlot | None:
    take = _take(principal)
    if take is None:
        return None
    try:
        taken = await async_redis().eval(_TAKE, 1, take.bucket, *take.args)
    except redis.RedisError as exc:
        raise RateLimitUnavailable(UNCOUNTABLE) from exc
    return take.slot(taken)


async def slot_kept(slot: StreamSlot | None, frames: AsyncIterable[T]) -> AsyncIterator[T]:
    """Pass ``frames`` through, renewing the slot's lease as they go; release it at the end."""
    every = lease_seconds() / 4
    try:
        async for frame in frames:
            if slot is not None and time.monotonic() - slot.renewed > every:
                await slot.renew()
            yield frame
    finally:
        if slot is not None:
            await slot.release()
