"""Following a session's events from a cursor: replay, then live, in order, exactly once.

Two sources hold a session's events: the database (persisted events) and the
Redis stream buffer (every event, deltas included, for a while). The reader
first snapshots the buffer, then pages the database, merging both by cursor;
then it follows the buffer live. When the snapshot holds every cursor from the
reader's to its last (a chat opened while its reply streams, usually), the
database is not read: a persisted event after that last one whose buffer copy
was lost is then read from the database as it is when following live (at the
next hole, or the next quiet heartbeat). Writers take cursors under the session row
lock and events reach the buffer only after their cursor is committed, in
cursor order (the entry ID is the cursor), so when the buffer shows cursor
``m`` every cursor before ``m`` is committed: a persisted event (in the
database), a delta already in the buffer, or a delta that will never be (it
expired, or lost the race to the buffer and goes out again in a later delta).
A hole before ``m`` is therefore filled from the database, and what is not
there is skipped. Duplicates are dropped by cursor.

When the buffer (Redis) cannot be read while following live, the reader sends
what the database holds after its cursor and then ends with ``StreamUnavailable``
(503 ``stream_unavailable``): SSE and WebSocket turn it into a last error frame,
and the client reconnects from its cursor (refused, 503, while Redis is away;
then replayed from the database). Polling the database instead, as at first,
spun: a refused connection fails at once, so every open stream ran a database
query and a heartbeat in a tight loop for as long as Redis was down. A reader
that cannot resume (the OpenAI door's reply) polls the database once a second.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError

from conversations import stream_buffer
from conversations.envelope import Envelope, envelope_of, seq_of
from conversations.selectors import events_after, events_between
from somaagent.async_db import db_call
from somaagent.errors import StreamUnavailable

log = logging.getLogger(__name__)

DB_PAGE = 500
HEARTBEAT = None  # yielded when nothing happened for a heartbeat interval


@db_call
def _db_after(session_id: Any, after: int, limit: int) -> list[Envelope]:
    return [envelope_of(e) for e in events_after(session_id=session_id, after=after, limit=limit)]


@db_call
def _db_between(session_id: Any, first: int, before: int) -> list[Envelope]:
    return [envelope_of(e) for e in events_between(session_id=session_id, first=first, before=before)]


DB_RETRY_SECONDS = 1.0


async def _or_none(read: Awaitable[list[Envelope]]) -> list[Envelope] | None:
    """The database's answer, or None while it cannot be reached (logged once a minute)."""
    try:
        return await read
    except (OperationalError, InterfaceError):
        log.warning("database unreachable; the stream goes on from the buffer", exc_info=True)
        return None


class SessionFollower:
    """Yields envelopes after ``after`` in cursor order, then ``None`` as heartbeats."""

    def __init__(
        self, session_id: Any, after: int, *, heartbeat: float | None = None, resumable: bool = True
    ) -> None:
        self.session_id = session_id
        # Without the buffer, a resumable reader (SSE, WebSocket: the client holds a cursor)
        # ends with StreamUnavailable; another (the OpenAI door's one reply) polls the database.
        self.resumable = resumable
        self.sid = str(session_id)
        self.last = after
        self.heartbeat = settings.SOMA.sse_heartbeat_seconds if heartbeat is None else heartbeat
        self._held: dict[int, Envelope] = {}
        self._last_entry = "0-0"

    async def __aiter__(self) -> AsyncIterator[Envelope | None]:
        async for envelope in self._replay():
            yield envelope
        block_ms = max(1, int(self.heartbeat * 1000))
        while True:
            try:
                entries = await stream_buffer.read_after(self.sid, self._last_entry, block_ms)
            except redis.RedisError:
                log.warning(
                    "stream buffer unreachable; ending the stream for the client to resume",
                    extra={"session_id": self.sid},
                    exc_info=True,
                )
                # What the database holds goes out first (deltas still held wait for the resume).
                caught_up = False
                for envelope in await _or_none(_db_after(self.session_id, self.last, DB_PAGE)) or []:
                    caught_up = True
                    yield self._emit(envelope)
                if self.resumable:
                    raise StreamUnavailable() from None
                if not caught_up:  # a reader that cannot resume polls, at a walking pace
                    await asyncio.sleep(min(self.heartbeat, DB_RETRY_SECONDS))
                    yield HEARTBEAT
                continue
            if not entries and self._held:
                # Events wait for a hole the database could not fill (it was away): try again.
                released = False
                async for envelope in self._release():
                    released = True
                    yield envelope
                if not released:
                    yield HEARTBEAT
                continue
            if not entries:
                # Quiet: catch up from the database, then beat. Without the database, just
                # beat: the next quiet moment tries again.
                caught_up = False
                for envelope in await _or_none(_db_after(self.session_id, self.last, DB_PAGE)) or []:
                    caught_up = True
                    yield self._emit(envelope)
                if not caught_up:
                    yield HEARTBEAT
                continue
            self._last_entry = entries[-1][0]
            for _, envelope in entries:
                self._hold(envelope)
            async for envelope in self._release():
                yield envelope

    async def _replay(self) -> AsyncIterator[Envelope]:
        try:
            buffered = await stream_buffer.read_all(self.sid)
        except redis.RedisError:
            log.warning(
                "stream buffer unreachable; replaying from the database",
                extra={"session_id": self.sid},
                exc_info=True,
            )
            buffered = []
        if buffered:
            self._last_entry = buffered[-1][0]
        for _, envelope in buffered:
            self._hold(envelope)
        if buffered and self._held_from_cursor(seq_of(buffered[-1][1])):
            # Every cursor from the reader's to the buffer's last is in the buffer, so the
            # database holds nothing before that last one that the buffer lacks.
            for held in self._pop_held_before(None):
                yield self._emit(held)
            return
        while True:
            # The database has every persisted event: without it the replay cannot know what the
            # buffer lacks, so it waits (beating) until the database answers.
            page = await _or_none(_db_after(self.session_id, self.last, DB_PAGE))
            while page is None:
                await asyncio.sleep(min(self.heartbeat, DB_RETRY_SECONDS))
                page = await _or_none(_db_after(self.session_id, self.last, DB_PAGE))
            for envelope in page:
                for held in self._pop_held_before(seq_of(envelope)):
                    yield self._emit(held)
                if seq_of(envelope) > self.last:
                    self._held.pop(seq_of(envelope), None)
                    yield self._emit(envelope)
            if len(page) < DB_PAGE:
                break
        for held in self._pop_held_before(None):
            yield self._emit(held)

    def _hold(self, envelope: Envelope) -> None:
        seq = seq_of(envelope)
        if seq > self.last and seq not in self._held:
            self._held[seq] = envelope

    def _held_from_cursor(self, newest: int) -> bool:
        """True when the held events are exactly the cursors after the reader's, up to ``newest``."""
        return newest >= self.last and len(self._held) == newest - self.last

    def _pop_held_before(self, bound: int | None) -> list[Envelope]:
        seqs = sorted(s for s in self._held if bound is None or s < bound)
        return [self._held.pop(s) for s in seqs]

    def _emit(self, envelope: Envelope) -> Envelope:
        self.last = seq_of(envelope)
        return envelope

    async def _release(self) -> AsyncIterator[Envelope]:
        """Emit held events in order, filling holes from the database."""
        while self._held:
            nxt = self.last + 1
            if nxt in self._held:
                yield self._emit(self._held.pop(nxt))
                continue
            lowest = min(self._held)
            filler = await _or_none(_db_between(self.session_id, nxt, lowest))
            if filler is None:
                return  # the database is away: keep what is held, fill the hole next time
            for envelope in filler:
                self._held.setdefault(seq_of(envelope), envelope)
            if nxt not in self._held:
                # Not persisted and not buffered: an expired delta. Move on.
                log.info(
                    "skipping cursors with no event",
                    extra={"session_id": self.sid, "first": nxt, "until": lowest},
                )
                self.last = min(self._held) - 1
