"""Coalesces one model round's tokens into deltas, and publishes the deltas of every turn of
the process together.

The turn's thread reads the model stream and hands text to ``add``; the first
text goes out at once, then at most one delta per coalescing window, so a fast
model costs one delta per window rather than one per token. A publisher whose
text is due joins the process's next *round* (``DeltaRounds``), run on a delta
writer: one SQL statement takes the cursors of every delta of the round, each
guarded by its turn's lease (``delta_cursors_take``), and one Redis pipeline
appends them all to their sessions' buffers. A hundred streaming turns thus
cost a statement and a round trip per round, not per delta. The turn's first
delta needs no cursor statement: its cursor was committed with the claim, under
the lease just taken. (Were the lease lost before it goes out, a later event of
the session is in the buffer first and it is refused as out of order, then
sent again with a guarded cursor; or it lands before the new owner's
``assistant.started`` with ``restart``, which tells clients to drop it.)

A publisher is in at most one round at a time, so its deltas go out in order;
text that arrives meanwhile waits for the next. A round that finds the turn's
lease gone stops the turn (``Watched.stop``), which closes the model stream;
``finish`` publishes what is left and returns once nothing of this publisher
is in flight.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import redis
from django.conf import settings
from django.db import DatabaseError

from conversations import stream_buffer
from conversations.services.events import delta_cursors_take, delta_envelope
from conversations.stream_buffer import OutOfOrder
from conversations.turn.watch import LEASE_LOST, TurnWatch, Watched, turn_watch
from somaagent.process_local import PerProcess

log = logging.getLogger(__name__)

RETRY_SECONDS = 0.2
ROUND_MAX = 200  # deltas in one round; more wait for the next


class DeltaPublisher:
    def __init__(self, watched: Watched, *, first_index: int = 0) -> None:
        self.watched = watched
        self.claim = watched.claim
        self.first_index = first_index  # a turn's later model rounds continue the delta numbering
        self.window = settings.SOMA.delta_coalesce_seconds
        self.deltas_sent = 0
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._busy = False  # waiting for a round, or in one
        self._finishing = False
        self._last_flush = 0.0

    @property
    def stop_reason(self) -> str | None:
        return self.watched.stop_reason

    # --- called from the turn's thread -----------------------------------------------------
    def add(self, text: str) -> None:
        with self._lock:
            self._pending.append(text)
            if self._busy or self.stop_reason:
                return
            self._busy = True
            at = self._due()
        delta_rounds().due(self, at)

    def finish(self) -> None:
        """Publish what is pending; returns when this publisher is in no round and waits for none."""
        with self._lock:
            self._finishing = True
            go = not self._busy and bool(self._pending) and not self.stop_reason
            if go:
                self._busy = True
        if go:
            delta_rounds().due(self, 0.0)
        with self._lock:
            while self._busy:
                self._idle.wait()

    def _due(self) -> float:
        if self.deltas_sent == 0 or self._finishing:
            return 0.0
        return self._last_flush + self.window

    # --- called by a round (on a delta writer) -----------------------------------------------
    def _take(self) -> str:
        """The text this round publishes ("" when there is none, or the turn must stop)."""
        with self._lock:
            text = "".join(self._pending)
            self._pending.clear()
        return "" if self.stop_reason else text

    def _done(self, *, sent: bool = False, keep: str = "", retry_at: float | None = None) -> float | None:
        """The round is over for this publisher: ``sent`` counts its delta; ``keep`` goes back in
        front of what is pending. Returns when it must join a round again (None: it is idle)."""
        if sent:
            self.deltas_sent += 1
            self._last_flush = time.monotonic()
        with self._lock:
            if keep:
                self._pending.insert(0, keep)
            if self._pending and not self.stop_reason:
                return retry_at if retry_at is not None else self._due()
            self._busy = False
            self._idle.notify_all()
            return None

    def _abandon(self) -> None:
        with self._lock:
            self._pending.clear()
            self._busy = False
            self._idle.notify_all()


def publish_round(batch: list[DeltaPublisher]) -> list[tuple[DeltaPublisher, float]]:
    """Publish one delta for each publisher of ``batch``; returns those that must go again, and when.

    One statement takes the cursors (the first delta of a turn has its own), one pipeline
    appends the deltas. A publisher whose turn lost its lease stops the turn; one that lost the
    buffer's race, or met a failing database or Redis, keeps its text for a later round (text
    that was to finish a turn is dropped instead: the terminal event carries the whole reply).
    """
    again: list[tuple[DeltaPublisher, float]] = []
    sessions: set[uuid.UUID] = set()
    texts: dict[DeltaPublisher, str] = {}
    for publisher in batch:
        if publisher.claim.session_id in sessions:  # one cursor per session and statement
            again.append((publisher, 0.0))
            continue
        sessions.add(publisher.claim.session_id)
        text = publisher._take()
        if text:
            texts[publisher] = text
        else:
            _settle(again, publisher, publisher._done())

    seqs: dict[DeltaPublisher, int] = {}
    guarded: list[DeltaPublisher] = []
    for publisher in texts:
        reserved = publisher.claim.reserved_cursor_take()
        if reserved is None:
            guarded.append(publisher)
        else:
            seqs[publisher] = reserved
    try:
        taken = delta_cursors_take([(p.claim.session_id, p.claim.turn_id, p.claim.owner) for p in guarded])
    except DatabaseError:
        log.warning("could not take %d deltas' cursors; they will be retried", len(guarded), exc_info=True)
        for publisher in guarded:
            _settle(again, publisher, _failed(publisher, texts.pop(publisher)))
    else:
        for publisher in guarded:
            seq = taken.get(publisher.claim.session_id)
            if seq is None:  # the turn is no longer this owner's (or its session is gone)
                publisher.watched.stop(LEASE_LOST)
                _settle(again, publisher, publisher._done())
                del texts[publisher]
            else:
                seqs[publisher] = seq

    going = list(texts)
    envelopes = [
        delta_envelope(
            session_id=p.claim.session_id,
            seq=seqs[p],
            data={"text": texts[p], "index": p.first_index + p.deltas_sent},
            parent_id=p.claim.tip.event_id,
        )
        for p in going
    ]
    try:
        errors = stream_buffer.append_each(envelopes)
    except redis.RedisError:
        log.warning("could not buffer %d deltas; they will be retried", len(going), exc_info=True)
        for publisher in going:
            _settle(again, publisher, _failed(publisher, texts[publisher]))
        return again
    for publisher, error in zip(going, errors, strict=True):
        if error is None:
            _settle(again, publisher, publisher._done(sent=True))
        elif isinstance(error, OutOfOrder):
            # Another event of the session got a later cursor and reached the buffer
            # first; readers skipped this one. The text goes out again at once.
            _settle(again, publisher, publisher._done(keep=texts[publisher], retry_at=0.0))
        else:
            log.warning(
                "could not buffer a delta; it will be retried",
                extra={"turn_id": str(publisher.claim.turn_id), "error": str(error)},
            )
            _settle(again, publisher, _failed(publisher, texts[publisher]))
    return again


def _failed(publisher: DeltaPublisher, text: str) -> float | None:
    if publisher._finishing:
        return publisher._done()  # the terminal event carries the whole text
    return publisher._done(keep=text, retry_at=time.monotonic() + RETRY_SECONDS)


def _settle(again: list[tuple[DeltaPublisher, float]], publisher: DeltaPublisher, at: float | None) -> None:
    if at is not None:
        again.append((publisher, at))


class DeltaRounds:
    """The process's rounds: publishers join when their text is due; one round runs at a time,
    on a delta writer, and takes every publisher that joined meanwhile."""

    def __init__(self, watch: TurnWatch) -> None:
        self._watch = watch
        self._ready: list[DeltaPublisher] = []
        self._lock = threading.Lock()
        self._queued = False  # a round is submitted or running

    def due(self, publisher: DeltaPublisher, at: float) -> None:
        if at > time.monotonic():
            self._watch.call_at(at, lambda: self.ready(publisher))
        else:
            self.ready(publisher)

    def ready(self, publisher: DeltaPublisher) -> None:
        with self._lock:
            self._ready.append(publisher)
            if self._queued:
                return
            self._queued = True
        self._watch.submit(self._run)

    def _run(self) -> None:
        while True:
            with self._lock:
                batch = self._ready[:ROUND_MAX]
                del self._ready[:ROUND_MAX]
                if not batch:
                    self._queued = False
                    return
            try:
                again = publish_round(batch)
            except Exception:
                # No publisher of the batch may wait forever: they go idle with their text
                # dropped (their turns' terminal events carry the whole reply).
                log.exception("a round of deltas failed")
                for publisher in batch:
                    publisher._abandon()
                continue
            for publisher, at in again:
                self.due(publisher, at)


_rounds = PerProcess(lambda: DeltaRounds(turn_watch()))


def delta_rounds() -> DeltaRounds:
    return _rounds.get()
