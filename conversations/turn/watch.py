"""One watcher per worker process for every turn the process runs.

A worker runs its turns on Celery's thread pool: a turn's thread spends most
of its life blocked on the model's socket, which costs a thread and nothing
else. What a running turn needs besides reading the model — its lease
renewed, its cancellation noticed, its time limit kept, its buffered tokens
published when the coalescing window closes — is done here for all of them at
once, so a thousand waiting turns cost one Redis ``MGET`` every
``CHECK_INTERVAL`` and two SQL statements every third of a lease, not a
thread and a query each.

``watch`` registers a turn and returns its ``Watched`` handle; ``stop`` on it
(from the watcher, or a round of deltas that found the lease gone) records why
the turn must stop and calls the turn's stop callbacks (they close the model
stream). ``call_at`` runs a short callback on the watcher's thread at a given
time (a coalescing window closing); ``submit`` runs a job on the delta writer: a
thread that keeps its database connection while there is work queued (and
gives it back when none is), so the many turn threads can give theirs back
while they wait. The watcher gives its own back after each renewal.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import redis
from django.conf import settings
from django.db import DatabaseError

from conversations.turn.claim import turn_leases_renew
from conversations.turn.types import ClaimedTurn
from somaagent.db_hold import db_drop_if_broken, db_release
from somaagent.process_local import PerProcess
from somaagent.redis_client import key, sync_redis

log = logging.getLogger(__name__)

CANCELLED = "cancelled"
LEASE_LOST = "lease_lost"
TIMED_OUT = "timed_out"
CHECK_INTERVAL = 0.25


@dataclass(eq=False)
class Watched:
    """A running turn as the watcher sees it."""

    claim: ClaimedTurn
    started: float = field(default_factory=time.monotonic)
    stop_reason: str | None = None
    _on_stop: list[Callable[[], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def on_stop(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` when the turn must stop (at once if it already must); returns an undo."""
        with self._lock:
            stopped = self.stop_reason is not None
            if not stopped:
                self._on_stop.append(callback)
        if stopped:
            callback()

        def undo() -> None:
            with self._lock:
                if callback in self._on_stop:
                    self._on_stop.remove(callback)

        return undo

    def stop(self, reason: str) -> None:
        with self._lock:
            if self.stop_reason is not None:
                return
            self.stop_reason = reason
            callbacks = list(self._on_stop)
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("a turn's stop callback failed", extra={"turn_id": str(self.claim.turn_id)})


class TurnWatch:
    def __init__(self) -> None:
        self._turns: dict[str, Watched] = {}
        self._lock = threading.Lock()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._queued = 0  # writer jobs submitted and not yet done
        self._wake = threading.Event()
        self._writers = ThreadPoolExecutor(max_workers=1, thread_name_prefix="delta-writer")
        self._thread = threading.Thread(target=self._run, name="turn-watch", daemon=True)
        self._thread.start()

    # --- called from turn threads --------------------------------------------------------
    def watch(self, claim: ClaimedTurn) -> Watched:
        watched = Watched(claim)
        with self._lock:
            self._turns[claim.owner] = watched
        return watched

    def unwatch(self, watched: Watched) -> None:
        with self._lock:
            if self._turns.get(watched.claim.owner) is watched:
                del self._turns[watched.claim.owner]

    def call_at(self, at: float, callback: Callable[[], None]) -> None:
        """Call ``callback`` on the watcher's thread at ``at`` (``time.monotonic()``): keep it short,
        and hand real work to ``submit``."""
        with self._lock:
            heapq.heappush(self._timers, (at, next(self._order), callback))
        self._wake.set()

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` on a delta writer thread."""
        with self._lock:
            self._queued += 1
        self._writers.submit(self._write, job)

    def running(self) -> int:
        with self._lock:
            return len(self._turns)

    # --- the watcher thread ----------------------------------------------------------------
    def _run(self) -> None:
        next_check = next_renew = time.monotonic()
        while True:
            now = time.monotonic()
            try:
                self._fire_timers(now)
                if now >= next_check:
                    next_check = now + CHECK_INTERVAL
                    self._check(now)
                if now >= next_renew:
                    next_renew = now + settings.SOMA.turn_lease_seconds / 3
                    self._renew()
            except Exception:  # the watcher must outlive any one bad round
                log.exception("turn watcher round failed")
            with self._lock:
                first_timer = self._timers[0][0] if self._timers else next_check
            self._wake.wait(max(0.0, min(first_timer, next_check, next_renew) - time.monotonic()))
            self._wake.clear()

    def _fire_timers(self, now: float) -> None:
        due = []
        with self._lock:
            while self._timers and self._timers[0][0] <= now:
                due.append(heapq.heappop(self._timers)[2])
        for callback in due:
            try:
                callback()
            except Exception:
                log.exception("a turn watcher timer failed")

    def _write(self, job: Callable[[], None]) -> None:
        db_drop_if_broken()
        try:
            job()
        except Exception:
            log.exception("a delta writer job failed")
        finally:
            with self._lock:
                self._queued -= 1
                idle = self._queued == 0
            if idle:
                db_release()

    def _snapshot(self) -> list[Watched]:
        with self._lock:
            return [w for w in self._turns.values() if w.stop_reason is None]

    def _check(self, now: float) -> None:
        """Cancellation asked through Redis, and the turns' own time limit."""
        turns = self._snapshot()
        if not turns:
            return
        limit = settings.SOMA.turn_time_limit_seconds
        for watched in turns:
            if now - watched.started > limit:
                log.warning("turn ran past its time limit", extra={"turn_id": str(watched.claim.turn_id)})
                watched.stop(TIMED_OUT)
        try:
            flags = sync_redis().mget([key("cancel", w.claim.turn_id) for w in turns])
        except redis.RedisError:
            log.debug("cancel check through Redis failed; the database check carries on", exc_info=True)
            return
        for watched, flag in zip(turns, flags, strict=True):
            if flag is not None:
                watched.stop(CANCELLED)

    def _renew(self) -> None:
        """Extend every lease this process holds; stop the turns that lost theirs or were cancelled."""
        turns = self._snapshot()
        if not turns:
            return
        try:
            held, cancelled = turn_leases_renew(owners={w.claim.owner: w.claim.turn_id for w in turns})
        except DatabaseError:
            # The leases run on: a database back within the lease keeps every turn.
            log.warning("could not renew the leases of running turns", exc_info=True)
            return
        finally:
            db_release()
        for watched in turns:
            if watched.claim.owner not in held:
                watched.stop(LEASE_LOST)
            elif watched.claim.owner in cancelled:
                watched.stop(CANCELLED)


_watch = PerProcess(TurnWatch)


def turn_watch() -> TurnWatch:
    """The process's watcher, started on first use (and again in a forked child)."""
    return _watch.get()
