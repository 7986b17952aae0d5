"""Queueing memory tasks. Never inside a transaction: a claim is taken, then its task is sent.

If the broker is down the claim is released at once (or simply expires), and
the beat sweep queues the write again later: nothing is lost, only delayed.
"""

from __future__ import annotations

import logging
import time
import uuid

from memory.services.delivery import Claim, claim_head, release_claims

log = logging.getLogger(__name__)

QUEUE = "memory"


def _send(task: str, kwargs: dict[str, object]) -> None:
    from somaagent.celery import app

    app.send_task(task, kwargs=kwargs, queue=QUEUE, routing_key=QUEUE, retry=False)


def dispatch_claims(*, claims: list[Claim]) -> int:
    """Queue one ``memory.deliver`` task per claim; returns how many were queued."""
    for index, claim in enumerate(claims):
        try:
            _send("memory.deliver", {"write_id": claim.write_id, "token": claim.token})
        except Exception as exc:  # kombu raises many connection error types
            log.warning(
                "could not queue memory delivery; the sweep will retry",
                extra={"memory_write_id": claim.write_id, "error": repr(exc)},
            )
            release_claims(claims=claims[index:])
            return index
    return len(claims)


def memory_stream_kick(*, tenant_id: uuid.UUID, session_id: uuid.UUID) -> bool:
    """The fast path after commit: lease the session's head write and queue its delivery."""
    claim = claim_head(tenant_id=tenant_id, session_id=session_id)
    if claim is None:
        return False  # being delivered, waiting for a retry, or nothing left
    return dispatch_claims(claims=[claim]) == 1


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
