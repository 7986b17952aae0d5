"""The per-session Redis Stream that live readers follow and replay from.

Every event is appended here after the transaction that gave it its cursor has
committed — persisted events and deltas (which are not persisted) alike. The
stream entry's ID is the cursor (``<seq>-0``), so Redis refuses an entry whose
cursor is lower than one already there (``OutOfOrder``): the buffer is always in
cursor order, and an event that lost that race is one readers have skipped or
will read from the database (conversations.streaming). Entries expire with the
key's TTL; losing them loses only deltas, never a persisted event.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings

from conversations.envelope import Envelope
from somaagent.batcher import Batcher
from somaagent.redis_client import async_redis, sync_redis

log = logging.getLogger(__name__)

StreamEntry = tuple[str, Envelope]


def stream_key(session_id: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}stream:{session_id}"


class OutOfOrder(Exception):
    """A later cursor is already in the buffer; readers have moved past this one."""


def _append(pipe: Any, envelope: Envelope) -> None:
    """Queue on ``pipe`` the entry at the envelope's cursor and the key's fresh TTL (two replies)."""
    key = stream_key(envelope["session_id"])
    pipe.xadd(
        key,
        {"seq": envelope["id"], "e": json.dumps(envelope, separators=(",", ":"))},
        id=f"{envelope['id']}-0",
        maxlen=settings.SOMA.stream_buffer_maxlen,
        approximate=True,
    )
    pipe.expire(key, settings.SOMA.stream_buffer_ttl_seconds)


def publish(envelope: Envelope) -> None:
    """Append one committed event; raises ``OutOfOrder`` and redis errors to the caller."""
    error = append_each([envelope])[0]
    if error is not None:
        raise error


def append_each(envelopes: list[Envelope]) -> list[Exception | None]:
    """Append committed events in one pipeline; returns, for each, None or why it was refused
    (``OutOfOrder``, or Redis's error). Raises redis errors that fail the whole pipeline."""
    if not envelopes:
        return []
    pipe = sync_redis().pipeline(transaction=False)
    for envelope in envelopes:
        _append(pipe, envelope)
    results = pipe.execute(raise_on_error=False)
    errors: list[Exception | None] = []
    for envelope, added in zip(envelopes, results[::2], strict=True):
        if not isinstance(added, redis.ResponseError):
            errors.append(None)
        elif "equal or smaller" in str(added):
            errors.append(OutOfOrder(envelope["id"]))
        else:
            errors.append(added)
    return errors


def _publish_many(envelopes: list[Envelope]) -> None:
    """One pipeline for every envelope handed over since the last round (``publish_soon``)."""
    try:
        errors = append_each(envelopes)
    except redis.RedisError:
        log.warning(
            "stream buffer publish failed; readers will read %d events from the database",
            len(envelopes),
            exc_info=True,
        )
        return
    for envelope, error in zip(envelopes, errors, strict=True):
        if error is not None and not isinstance(error, OutOfOrder):
            log.warning(
                "stream buffer publish failed; readers will read the event from the database",
                extra={"session_id": envelope["session_id"], "seq": envelope["id"], "error": str(error)},
            )


# The accept's user message: its request answers without waiting for Redis, and a burst of
# accepts shares one round trip. Best effort like every buffer entry (readers fall back to the
# database), so an envelope lost with its process loses nothing.
_soon: Batcher[Envelope] = Batcher("stream-publish", _publish_many)


def publish_soon(envelope: Envelope) -> None:
    """Used after commit: hand the event to the process's publisher thread and go on."""
    _soon.add(envelope)


def publish_soon_flush() -> int:
    """Publish what is pending now, on this thread (tests, benchmarks)."""
    return _soon.flush()


def publish_best_effort(envelope: Envelope) -> None:
    """Used after commit: the event is durable, readers recover it from the database."""
    try:
        publish(envelope)
    except OutOfOrder:
        log.debug("a later event was buffered first; readers read this one from the database")
    except redis.RedisError:
        log.warning(
            "stream buffer publish failed; readers will read the event from the database",
            extra={"session_id": envelope["session_id"], "seq": envelope["id"]},
            exc_info=True,
        )


def _decode(raw: Any) -> list[StreamEntry]:
    out: list[StreamEntry] = []
    for entry_id, fields in raw:
        eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        out.append((eid, json.loads(fields.get(b"e") or fields["e"])))
    return out


async def read_all(session_id: str) -> list[StreamEntry]:
    return _decode(await async_redis().xrange(stream_key(session_id)))


async def read_after(session_id: str, last_id: str, block_ms: int) -> list[StreamEntry]:
    client: aioredis.Redis = async_redis()
    result: Any = await client.xread({stream_key(session_id): last_id}, block=block_ms, count=500)
    if not result:
        return []
    return _decode(result[0][1])


def delete(session_id: str) -> None:
    try:
        sync_redis().delete(stream_key(session_id))
    except redis.RedisError:
        log.warning("could not delete stream buffer", extra={"session_id": session_id})
