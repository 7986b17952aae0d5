"""Coalesces one model round's tokens into deltas.

The turn's thread reads the model stream and hands text to ``add``; the
process's delta writers (``turn_watch``) publish it: the first text at once,
then at most one delta per coalescing window, so a fast model costs one
Redis/database round trip per window rather than per token. At most one flush
of a publisher is scheduled or running at a time, so its deltas go out in
order; text that arrives meanwhile waits for the next one. A delta costs one
SQL statement (its cursor, guarded by the turn's lease) and one Redis append;
the turn's first costs only the append: its cursor was committed with the
claim, under the lease just taken. (Were the lease lost before it goes out, a
later event of the session is in the buffer first and it is refused as out of
order, then sent again with a guarded cursor; or it lands before the new
owner's ``assistant.started`` with ``restart``, which tells clients to drop it.) A flush that finds
the turn's lease gone stops the turn (``Watched.stop``), which closes the
model stream; ``finish`` publishes what is left and returns once nothing of
this publisher is in flight.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from django.conf import settings
from django.db import DatabaseError

from conversations.services.events import GuardFailed, delta_cursor_take, delta_publish
from conversations.stream_buffer import OutOfOrder
from conversations.turn.watch import LEASE_LOST, Watched, turn_watch

log = logging.getLogger(__name__)

RETRY_SECONDS = 0.2


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
        self._busy = False  # a flush is scheduled or running
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
        turn_watch().schedule(at, self._flush)

    def finish(self) -> None:
        """Publish what is pending; returns when no flush of this publisher is scheduled or running."""
        with self._lock:
            self._finishing = True
            if not self._busy and self._pending and not self.stop_reason:
                self._busy = True
                turn_watch().schedule(0.0, self._flush)
            while self._busy:
                self._idle.wait()

    def _due(self) -> float:
        if self.deltas_sent == 0 or self._finishing:
            return 0.0
        return self._last_flush + self.window

    # --- on a delta writer thread ------------------------------------------------------------
    def _flush(self) -> None:
        retry_at: float | None = None
        try:
            retry_at = self._publish_pending()
        finally:
            with self._lock:
                if self._pending and not self.stop_reason:
                    at = retry_at if retry_at is not None else self._due()
                    turn_watch().schedule(at, self._flush)
                else:
                    self._busy = False
                    self._idle.notify_all()

    def _publish_pending(self) -> float | None:
        """Publish the pending text as one delta; returns when to try again if it must be retried."""
        with self._lock:
            text = "".join(self._pending)
            self._pending.clear()
        if not text or self.stop_reason:
            return None
        try:
            # The turn's first delta has the cursor its claim took; the rest take one each.
            seq = self.claim.reserved_cursor_take() or delta_cursor_take(
                session_id=self.claim.session_id, lease=(self.claim.turn_id, self.claim.owner)
            )
            delta_publish(
                session_id=self.claim.session_id,
                seq=seq,
                data={"text": text, "index": self.first_index + self.deltas_sent},
                parent_id=self.claim.tip.event_id,
            )
        except GuardFailed:
            self.watched.stop(LEASE_LOST)
            return None
        except OutOfOrder:
            # Another event of the session got a later cursor and reached the buffer
            # first; readers skipped this one. The text goes out again at once.
            self._keep(text)
            return 0.0
        except (redis.RedisError, DatabaseError):
            log.warning(
                "could not publish a delta; it will be retried",
                extra={"turn_id": str(self.claim.turn_id)},
                exc_info=True,
            )
            if self._finishing:
                return None  # the terminal event carries the whole text
            self._keep(text)
            return time.monotonic() + RETRY_SECONDS
        self.deltas_sent += 1
        self._last_flush = time.monotonic()
        return None

    def _keep(self, text: str) -> None:
        with self._lock:
            self._pending.insert(0, text)
