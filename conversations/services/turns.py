"""The turn lifecycle in the database: dispatch, claim, lease, finish, sweep.

A turn is claimed by exactly one worker at a time under a lease
(``lease_owner`` + ``lease_expires_at``) that the running worker renews. A
redelivered or duplicated task finds the turn finished or leased and does
nothing. When a worker dies its lease runs out and ``turn_sweep`` dispatches
the turn again; the next claim restarts the reply (``assistant.started`` with
``restart: true``). Turns of one session run one after another, in order.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from conversations.models import EventType, Session, SessionEvent, Turn
from conversations.services.events import event_append
from conversations.services.titles import title_proposal_enqueue
from somaagent.context import adopt_request_id
from somaagent.outbox import outbox_enqueue, register_topic

log = logging.getLogger(__name__)

TURN_TOPIC = "conversation.turn"
register_topic(TURN_TOPIC, task="conversation.run_turn", queue="conversation")

TERMINAL_STATUS = {
    EventType.ASSISTANT_FINAL: Turn.Status.COMPLETED,
    EventType.ASSISTANT_ERROR: Turn.Status.FAILED,
    EventType.ASSISTANT_CANCELLED: Turn.Status.CANCELLED,
}


class LeaseLost(Exception):
    """Another worker owns the turn now (or it ended): stop without writing."""


@dataclass(frozen=True)
class ClaimedTurn:
    turn_id: uuid.UUID
    session_id: uuid.UUID
    tenant_id: uuid.UUID
    persona_id: uuid.UUID | None
    user_event_id: int
    user_event_uuid: uuid.UUID
    user_seq: int
    owner: str
    attempt: int
    restart: bool
    user_message: str = ""  # the text of user_event, loaded with the claim


def _lease_delta() -> timedelta:
    return timedelta(seconds=settings.SOMA.turn_lease_seconds)


def turn_dispatch(*, turn: Turn, reason: str, mark_dispatched: bool = True) -> None:
    """Queue a run of ``turn`` through the outbox (inside the caller's transaction).

    ``mark_dispatched=False`` when the caller already set ``dispatched_at``.
    """
    if mark_dispatched:
        Turn.objects.filter(pk=turn.pk).update(dispatched_at=timezone.now())
    outbox_enqueue(
        topic=TURN_TOPIC,
        payload={"turn_id": str(turn.pk)},
        dedupe_key=f"turn:{turn.pk}:{reason}:{uuid.uuid4().hex[:12]}",
    )


def _has_active_predecessor(turn: Turn) -> bool:
    return Turn.objects.filter(
        session_id=turn.session_id,
        status__in=Turn.ACTIVE_STATUSES,
        user_event__seq__lt=turn.user_event.seq,
    ).exists()


def turn_claim(*, turn_id: uuid.UUID | str, owner: str, start_model: str | None = None) -> ClaimedTurn | None:
    """Take the turn's lease, or return None if there is nothing for this worker to do.

    With ``start_model`` the claim also writes ``assistant.started`` (``restart``
    on a later attempt) in the same transaction: one commit less before the
    first delta.
    """
    now = timezone.now()
    with transaction.atomic():
        turn = (
            Turn.objects.select_for_update()
            .select_related("user_event", "session")
            .filter(pk=turn_id)
            .first()
        )
        if turn is None:
            log.info("turn no longer exists", extra={"turn_id": str(turn_id)})
            return None
        if turn.status not in Turn.ACTIVE_STATUSES:
            return None
        if turn.lease_owner and turn.lease_expires_at and turn.lease_expires_at > now:
            return None
        if _has_active_predecessor(turn):
            return None  # the predecessor dispatches this turn when it ends
        if turn.cancel_requested:
            _finish_locked(turn, EventType.ASSISTANT_CANCELLED, {"partial": ""})
            return None
        if turn.attempts >= settings.SOMA.turn_max_attempts:
            _finish_locked(
                turn,
                EventType.ASSISTANT_ERROR,
                {
                    "code": "worker_lost",
                    "message": f"The reply failed {turn.attempts} times because its worker stopped.",
                    "retryable": True,
                },
            )
            return None
        turn.attempts += 1
        turn.status = Turn.Status.RUNNING
        turn.lease_owner = owner
        turn.lease_expires_at = now + _lease_delta()
        turn.started_at = turn.started_at or now
        turn.save(update_fields=["attempts", "status", "lease_owner", "lease_expires_at", "started_at"])
        if start_model is not None:
            event_append(
                session_id=turn.session_id,
                type=EventType.ASSISTANT_STARTED,
                data={
                    "model": start_model,
                    "reply_to": str(turn.user_event.event_id),
                    "restart": turn.attempts > 1,
                    "request_id": adopt_request_id(turn.user_event.payload.get("request_id")),
                },
            )
        return ClaimedTurn(
            turn_id=turn.pk,
            session_id=turn.session_id,
            tenant_id=turn.tenant_id,
            persona_id=turn.session.persona_id,
            user_event_id=turn.user_event_id,
            user_event_uuid=turn.user_event.event_id,
            user_seq=turn.user_event.seq,
            owner=owner,
            attempt=turn.attempts,
            restart=turn.attempts > 1,
            user_message=str(turn.user_event.payload.get("message", "")),
        )


def turn_renew_lease(*, turn_id: uuid.UUID, owner: str) -> bool:
    """Extend the lease; False when this worker no longer owns the turn."""
    updated = Turn.objects.filter(pk=turn_id, lease_owner=owner, status=Turn.Status.RUNNING).update(
        lease_expires_at=timezone.now() + _lease_delta()
    )
    return updated == 1


def turn_is_cancel_requested(*, turn_id: uuid.UUID) -> bool:
    return Turn.objects.filter(pk=turn_id, cancel_requested=True).exists()


def turn_emit(*, claim: ClaimedTurn, type: str, data: dict[str, Any]) -> SessionEvent:
    """Persist a non-terminal event of a running turn, if this worker still owns it."""
    with transaction.atomic():
        _lock_owned(claim)
        return event_append(session_id=claim.session_id, type=type, data=data)


def _lock_owned(claim: ClaimedTurn, *, related: tuple[str, ...] = ()) -> Turn:
    """Lock the turn's row; ``related`` rows are loaded in the same statement, not locked."""
    rows = Turn.objects.select_for_update(of=("self",)).filter(pk=claim.turn_id)
    if related:
        rows = rows.select_related(*related)
    turn = rows.first()
    if turn is None or turn.status != Turn.Status.RUNNING or turn.lease_owner != claim.owner:
        raise LeaseLost(str(claim.turn_id))
    return turn


# Hooks run inside the finishing transaction: (turn, event_type, data) -> None.
FINISH_HOOKS: list[Any] = []


def turn_finish(
    *,
    claim: ClaimedTurn,
    type: str,
    data: dict[str, Any],
    model: str = "",
    usage: dict[str, int] | None = None,
) -> SessionEvent:
    """Write the turn's one terminal event and release it, if this worker still owns it."""
    with transaction.atomic():
        # reply_to and the FINISH_HOOKS read these: loaded with the lock, not lazily one by one.
        turn = _lock_owned(claim, related=("user_event", "session", "tenant"))
        turn.model = model
        turn.usage = usage or {}
        return _finish_locked(turn, type, data)


def _finish_locked(turn: Turn, type: str, data: dict[str, Any]) -> SessionEvent:
    # reply_to names the user event this terminal event answers, like assistant.started's.
    data = {**data, "reply_to": str(turn.user_event.event_id)}
    event = event_append(session_id=turn.session_id, type=type, data=data)
    turn.status = TERMINAL_STATUS[EventType(type)]
    turn.finished_at = timezone.now()
    turn.lease_owner = ""
    turn.lease_expires_at = None
    turn.error_code = data.get("code", "") if type == EventType.ASSISTANT_ERROR else ""
    turn.save(
        update_fields=[
            "status",
            "finished_at",
            "lease_owner",
            "lease_expires_at",
            "error_code",
            "model",
            "usage",
        ]
    )
    for hook in FINISH_HOOKS:
        hook(turn=turn, event_type=type, data=data)
    if type == EventType.ASSISTANT_FINAL:
        title_proposal_enqueue(turn=turn)  # the model names the chat after its first reply
    successor = (
        Turn.objects.filter(session_id=turn.session_id, status=Turn.Status.QUEUED)
        .select_related("user_event")
        .order_by("user_event__seq")
        .first()
    )
    if successor is not None:
        turn_dispatch(turn=successor, reason="after")
    return event


def turn_request_cancel(*, session: Session) -> list[uuid.UUID]:
    """Ask every active turn of the session to stop; queued ones end at once."""
    from somaagent.redis_client import key, sync_redis

    cancelled: list[uuid.UUID] = []
    with transaction.atomic():
        turns = list(
            Turn.objects.select_for_update()
            .filter(session=session, status__in=Turn.ACTIVE_STATUSES)
            .select_related("user_event")
        )
        for turn in turns:
            turn.cancel_requested = True
            turn.save(update_fields=["cancel_requested"])
            cancelled.append(turn.pk)
            if turn.status == Turn.Status.QUEUED:
                _finish_locked(turn, EventType.ASSISTANT_CANCELLED, {"partial": ""})
    for turn_id in cancelled:
        try:
            sync_redis().set(key("cancel", turn_id), "1", ex=3600)
        except Exception:  # the DB flag is authoritative; Redis only makes it fast
            log.warning("could not signal cancel through Redis", extra={"turn_id": str(turn_id)})
    return cancelled


def turn_sweep(*, batch_size: int = 100) -> dict[str, int]:
    """Re-dispatch turns whose lease expired, and queued turns that were never picked up."""
    now = timezone.now()
    counts = {"expired": 0, "stale_queued": 0}
    grace = timedelta(seconds=settings.SOMA.turn_redispatch_after_seconds)
    with transaction.atomic():
        expired = list(
            Turn.objects.select_for_update(skip_locked=True)
            .filter(status=Turn.Status.RUNNING, lease_expires_at__lt=now)
            .order_by("lease_expires_at")[:batch_size]
        )
        for turn in expired:
            log.warning(
                "turn lease expired; dispatching it again",
                extra={"turn_id": str(turn.pk), "owner": turn.lease_owner, "attempts": turn.attempts},
            )
            # Nobody owns it now; the grace period stops the next sweeps from
            # dispatching it again while the new task waits in the queue.
            turn.lease_owner = ""
            turn.lease_expires_at = now + grace
            turn.save(update_fields=["lease_owner", "lease_expires_at"])
            turn_dispatch(turn=turn, reason="lease-expired")
            counts["expired"] += 1
        stale = list(
            Turn.objects.select_for_update(skip_locked=True)
            .filter(status=Turn.Status.QUEUED)
            .filter(
                Q(dispatched_at__lt=now - grace) | Q(dispatched_at__isnull=True, created_at__lt=now - grace)
            )
            .select_related("user_event")
            .order_by("created_at")[:batch_size]
        )
        for turn in stale:
            if _has_active_predecessor(turn):
                continue
            turn_dispatch(turn=turn, reason="stale")
            counts["stale_queued"] += 1
    return counts
