"""Coalesces a turn's tokens into deltas and keeps the turn's lease alive.

The turn's main thread reads the model stream and hands text to ``add``; a
publisher thread (long-lived, see ``_publisher_threads``) publishes it: the
first text at once, then at most one delta per coalescing window, so a fast
model costs one Redis/database round trip per window rather than per token.
The same thread renews the lease and watches for cancellation; when either
tells the turn to stop it calls ``on_stop`` (which closes the model stream)
and records why.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import redis
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection

from conversations.services.events import GuardFailed, delta_publish
from conversations.services.turns import (
    ClaimedTurn,
    turn_is_cancel_requested,
    turn_renew_lease,
)
from conversations.stream_buffer import OutOfOrder
from somaagent.process_local import PerProcess
from somaagent.redis_client import key, sync_redis

log = logging.getLogger(__name__)

CANCELLED = "cancelled"
LEASE_LOST = "lease_lost"
CHECK_INTERVAL = 0.25


# Long-lived threads (per process, rebuilt after fork) that run the publishers: a
# thread of its own per turn would open a new database connection for every
# turn, right before the first delta; these threads keep theirs.
_executor = PerProcess(lambda: ThreadPoolExecutor(max_workers=32, thread_name_prefix="delta-publisher"))


def _publisher_threads() -> ThreadPoolExecutor:
    return _executor.get()


class DeltaPublisher:
    def __init__(
        self, claim: ClaimedTurn, *, on_stop: Callable[[], None] | None = None, first_index: int = 0
    ) -> None:
        self.claim = claim
        self.on_stop = on_stop
        self.first_index = first_index  # a turn's later model rounds continue the delta numbering
        self.window = settings.SOMA.delta_coalesce_seconds
        self.renew_every = settings.SOMA.turn_lease_seconds / 3
        self.stop_reason: str | None = None
        self.deltas_sent = 0
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._finishing = False
        self._last_flush = 0.0
        self._last_check = time.monotonic()
        self._last_renew = time.monotonic()
        self._cancel_key = key("cancel", claim.turn_id)
        self._done: Future[None] | None = None

    # --- called from the turn's thread -----------------------------------------
    def add(self, text: str) -> None:
        with self._lock:
            self._pending.append(text)
        self._wake.set()

    def start(self) -> None:
        self._done = _publisher_threads().submit(self.run)

    def finish(self) -> None:
        """Publish what is pending and stop; returns when the publisher has ended."""
        self._finishing = True
        self._wake.set()
        if self._done is not None:
            self._done.result()

    # --- the publisher thread ------------------------------------------------------
    def run(self) -> None:
        # The thread's connection lives on between turns: drop it if broken or too old.
        if not connection.in_atomic_block:
            close_old_connections()
        try:
            while self.stop_reason is None:
                now = time.monotonic()
                with self._lock:
                    pending = bool(self._pending)
                if pending:
                    due = self.deltas_sent == 0 or self._finishing or now - self._last_flush >= self.window
                    if due:
                        self._flush()
                        continue
                    timeout = self._last_flush + self.window - now
                elif self._finishing:
                    return
                else:
                    timeout = CHECK_INTERVAL
                self._wake.wait(max(0.0, min(timeout, CHECK_INTERVAL)))
                self._wake.clear()
                self._housekeeping()
        except Exception:
            log.exception("delta publisher failed", extra={"turn_id": str(self.claim.turn_id)})

    def _halt(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            if self.on_stop is not None:
                self.on_stop()

    def _flush(self) -> None:
        with self._lock:
            text = "".join(self._pending)
            self._pending.clear()
        try:
            delta_publish(
                session_id=self.claim.session_id,
                data={"text": text, "index": self.first_index + self.deltas_sent},
                guard=lambda: turn_renew_lease(turn_id=self.claim.turn_id, owner=self.claim.owner),
            )
        except GuardFailed:
            self._halt(LEASE_LOST)
            return
        except OutOfOrder:
            # Another event of the session got a later cursor and reached the buffer
            # first; readers skipped this one. The text goes out with the next delta.
            with self._lock:
                self._pending.insert(0, text)
            return
        except (redis.RedisError, DatabaseError):
            log.warning(
                "could not publish a delta; it will be retried",
                extra={"turn_id": str(self.claim.turn_id)},
                exc_info=True,
            )
            if not self._finishing:
                # Keep the text for the next attempt; when finishing, the
                # terminal event carries the whole text, so it is dropped.
                with self._lock:
                    self._pending.insert(0, text)
                time.sleep(0.2)
            return
        self.deltas_sent += 1
        self._last_flush = time.monotonic()
        self._last_renew = self._last_flush

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._last_check >= CHECK_INTERVAL:
            self._last_check = now
            try:
                if sync_redis().exists(self._cancel_key):
                    self._halt(CANCELLED)
                    return
            except redis.RedisError:
                log.debug("cancel check through Redis failed", exc_info=True)
        if now - self._last_renew >= self.renew_every:
            self._last_renew = now
            if turn_is_cancel_requested(turn_id=self.claim.turn_id):
                self._halt(CANCELLED)
            elif not turn_renew_lease(turn_id=self.claim.turn_id, owner=self.claim.owner):
                self._halt(LEASE_LOST)
