"""Queueing memory tasks. Never inside a transaction: a claim is taken, then its task is sent.

If the broker is down the claim is released at once (or simply expires), and
the beat sweep queues the write again later: nothing is lost, only delayed.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

from celery import current_app

from memory.services.delivery import Claim, claim_heads, release_claims
from somaagent.db_hold import db_release
from somaagent.process_local import PerProcess

log = logging.getLogger(__name__)

QUEUE = "memory"


def _send(task: str, kwargs: dict[str, object]) -> None:
    current_app.send_task(task, kwargs=kwargs, queue=QUEUE, routing_key=QUEUE, retry=False)


CLAIMS_PER_TASK = 20
KICK_BATCH_SECONDS = 0.05


def dispatch_claims(*, claims: list[Claim]) -> int:
    """Queue ``memory.deliver`` tasks for ``claims``, up to ``CLAIMS_PER_TASK`` each; returns
    how many claims were queued (the others' leases are given back for the sweep)."""
    for start in range(0, len(claims), CLAIMS_PER_TASK):
        chunk = claims[start : start + CLAIMS_PER_TASK]
        try:
            _send("memory.deliver", {"claims": [[c.write_id, c.token] for c in chunk]})
        except Exception as exc:  # kombu raises many connection error types
            log.warning(
                "could not queue memory delivery; the sweep will retry",
                extra={"memory_write_ids": [c.write_id for c in chunk], "error": repr(exc)},
            )
            release_claims(claims=claims[start:])
            return start
    return len(claims)


class _Kicks:
    """Streams with new writes, dispatched in batches by one thread per process.

    After a commit a caller only adds its stream here; every ``KICK_BATCH_SECONDS``
    the thread leases the heads of all pending streams in one statement and queues
    one task per ``CLAIMS_PER_TASK`` of them. A busy worker thus sends a few tasks a
    second, not one per turn, and the turn's thread does neither. A process that
    dies with streams still here loses nothing: the writes are in the outbox and the
    beat sweep dispatches them.
    """

    def __init__(self) -> None:
        self._streams: set[uuid.UUID] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        threading.Thread(target=self._run, name="memory-kicks", daemon=True).start()

    def add(self, session_id: uuid.UUID) -> None:
        with self._lock:
            self._streams.add(session_id)
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(KICK_BATCH_SECONDS)  # let the streams of a burst gather
            self._wake.clear()
            with self._lock:
                streams, self._streams = list(self._streams), set()
            try:
                dispatch_claims(claims=claim_heads(session_ids=streams))
            except Exception:  # the sweep dispatches what this round could not
                log.exception("could not dispatch memory writes; the sweep will")
            finally:
                db_release()


_kicks = PerProcess(_Kicks)


def memory_stream_kick(*, tenant_id: uuid.UUID, session_id: uuid.UUID) -> None:
    """The fast path after commit: the session's stream is dispatched within a moment."""
    _kicks.get().add(session_id)


REPLICATE_KICK_SECONDS = 0.5
_last_kick = [0.0]


def replicate_soon() -> None:
    """Ask for a replication run now (the beat runs one every few seconds anyway).

    At most one ask per process every ``REPLICATE_KICK_SECONDS``: one run replicates
    every write delivered before it, so a busy worker does not queue one per write.
    """
    now = time.monotonic()
    if now - _last_kick[0] < REPLICATE_KICK_SECONDS:
        return
    _last_kick[0] = now
    try:
        _send("memory.replicate", {})
    except Exception as exc:  # kombu raises many connection error types
        log.info("could not queue replication; the beat will run it", extra={"error": repr(exc)})
