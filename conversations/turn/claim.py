"""The turn lifecycle in the database: the claim, the lease and the events a running turn writes.

A turn is claimed by exactly one worker at a time under a lease
(``lease_owner`` + ``lease_expires_at``) that the running worker renews. A
redelivered or duplicated task finds the turn finished or leased and does
nothing. When a worker dies its lease runs out and ``turn_sweep`` dispatches
the turn again; the next claim restarts the reply (``assistant.started`` with
``restart: true``). Turns of one session run one after another, in order.

The rest of the lifecycle sits beside it: what a turn is (``turn_types``), the order turns
run in, their dispatch and the sweep (``turn_queue``), and their end (``turn_finish``).
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from conversations.models import EventType, Session, SessionEvent, SessionSummary, Turn
from conversations.services.events import event_append
from conversations.turn.dispatch import ORDER_T_E
from conversations.turn.finish import turn_finish_unrun
from conversations.turn.types import ClaimedTurn, Ended, LeaseLost, ReservedCursor, TurnTip
from memory.port import namespace_for
from somaagent.models import Persona
from somaagent.request_id import adopt_request_id
from somaagent.sql import p_uuid, v_datetime, v_json, v_uuid

log = logging.getLogger(__name__)


def _lease_delta() -> timedelta:
    return timedelta(seconds=settings.SOMA.turn_lease_seconds)


def turn_claim(
    *,
    turn_id: uuid.UUID | str,
    owner: str,
    ended: Ended,
    start: Callable[[ClaimedTurn], str | None] | None = None,
) -> ClaimedTurn | None:
    """Take the turn's lease, or return None if there is nothing for this worker to do.

    One read loads the turn with its user message, session and summary; then
    ``start(claim)`` names the model that will answer (None: none will), and
    ``assistant.started`` (``restart`` on a later attempt) is written in the
    same transaction. A turn cancelled before it started, or out of attempts,
    ends here (``ended`` follows).
    """
    now = timezone.now()
    with transaction.atomic():
        row = _claim_read(turn_id)
        if row is None:
            log.info("turn no longer exists", extra={"turn_id": str(turn_id)})
            return None
        if row.status not in Turn.ACTIVE_STATUSES:
            return None
        if row.lease_owner and row.lease_expires_at and row.lease_expires_at > now:
            return None
        if row.waits:
            return None  # the predecessor dispatches this turn when it ends
        if row.awaiting_approval:
            return None  # parked: the last answer to its approvals dispatches it
        out_of_attempts = row.attempts >= settings.SOMA.turn_max_attempts and row.resume_state is None
        if row.cancel_requested or out_of_attempts:
            turn = Turn.objects.select_related("user_event", "session").get(pk=row.turn_id)
            if row.cancel_requested:
                turn_finish_unrun(turn, EventType.ASSISTANT_CANCELLED, {"partial": ""}, ended=ended)
            else:
                turn_finish_unrun(
                    turn,
                    EventType.ASSISTANT_ERROR,
                    {
                        "code": "worker_lost",
                        "message": f"The reply failed {turn.attempts} times because its worker stopped.",
                        "retryable": True,
                    },
                    ended=ended,
                )
            return None
        resume = row.resume_state if not row.cancel_requested else None
        # Going on after approvals is the same attempt, not a restart; its tool runs carry it.
        attempt = row.attempts if resume is not None else row.attempts + 1
        payload = row.payload
        metadata = payload.get("metadata")
        claim = ClaimedTurn(
            turn_id=row.turn_id,
            session_id=row.session_id,
            tenant_id=row.tenant_id,
            persona_id=row.persona_id,
            user_event_id=row.user_event_id,
            user_event_uuid=row.user_event_uuid,
            user_seq=row.user_seq,
            owner=owner,
            attempt=attempt,
            restart=attempt > 1,
            user_message=str(payload.get("message", "")),
            user_metadata=metadata if isinstance(metadata, dict) else None,
            user_occurred_at=row.user_occurred_at,
            summary=row.summary,
            summary_covered=row.summary_covered,
            memory_namespace=namespace_for(
                persona_id=row.persona_id, owner=row.created_by_id, shared=row.shared_memory
            ),
            session_owner_id=row.created_by_id,
            regenerated=row.position is not None,
            user_parent_id=row.user_parent_id,
            session_branched=row.session_branched,
            summary_event_id=row.summary_event_id,
            tip=TurnTip(row.tip_event_id),
            resume=resume,
        )
        model = start(claim) if start is not None else None
        if resume is not None:
            model = None  # its reply began before it was parked: no assistant.started again
        started_id = uuid.uuid4() if model is not None else None
        Turn.objects.filter(pk=row.turn_id).update(
            attempts=attempt,
            status=Turn.Status.RUNNING,
            lease_owner=owner,
            lease_expires_at=now + _lease_delta(),
            started_at=row.started_at or now,
            tip_event_id=started_id or row.tip_event_id,
            resume_state=None,  # taken: if this worker dies, the turn restarts from the beginning
        )
        if model is not None:
            started = event_append(
                session_id=claim.session_id,
                type=EventType.ASSISTANT_STARTED,
                data={
                    "model": model,
                    "reply_to": str(claim.user_event_uuid),
                    "restart": claim.restart,
                    "request_id": adopt_request_id(payload.get("request_id")),
                },
                reserve=1,  # the first delta's cursor: it needs no statement of its own
                attach=claim.attach_next(),
                event_id=started_id,
            )
            claim.tip.event_id = started.event_id
            claim = dataclasses.replace(claim, first_cursor=ReservedCursor(started.seq + 1))
        return claim


@dataclass(frozen=True)
class _ClaimRow:
    turn_id: uuid.UUID
    status: str
    attempts: int
    lease_owner: str
    lease_expires_at: datetime | None
    cancel_requested: bool
    started_at: datetime | None
    tenant_id: uuid.UUID
    session_id: uuid.UUID
    user_event_id: int
    user_event_uuid: uuid.UUID
    user_seq: int
    payload: dict[str, Any]
    user_occurred_at: datetime | None
    persona_id: uuid.UUID | None
    summary: str
    summary_covered: int
    created_by_id: int | None
    shared_memory: bool
    waits: bool
    position: int | None
    tip_event_id: uuid.UUID | None
    user_parent_id: uuid.UUID | None
    session_branched: bool
    summary_event_id: uuid.UUID | None
    awaiting_approval: bool
    resume_state: dict[str, Any] | None


def _claim_read(turn_id: uuid.UUID | str) -> _ClaimRow | None:
    """The turn (locked), its user message, session and summary, and whether an earlier turn of
    the session is still active: one statement, written by hand (the ORM's version of this
    join took a third of a turn's CPU to build)."""
    turns, events = Turn._meta.db_table, SessionEvent._meta.db_table
    sql = (
        "SELECT t.id, t.status, t.attempts, t.lease_owner, t.lease_expires_at, t.cancel_requested,"
        " t.started_at, t.tenant_id, t.session_id, t.user_event_id, e.event_id, e.seq, e.payload,"
        " e.occurred_at, s.persona_id, m.text, m.covered_seq, s.created_by_id, p.shared_memory,"
        f" EXISTS (SELECT 1 FROM {turns} q JOIN {events} qe ON qe.id = q.user_event_id"
        "  WHERE q.session_id = t.session_id AND q.status IN (%s, %s)"
        f"  AND COALESCE(q.position, qe.seq) < {ORDER_T_E}),"
        " t.position, t.tip_event_id, e.parent_id, s.branched, m.covered_event_id,"
        " t.awaiting_approval, t.resume_state"
        f" FROM {turns} t JOIN {events} e ON e.id = t.user_event_id"
        f" JOIN {Session._meta.db_table} s ON s.id = t.session_id"
        f" LEFT JOIN {SessionSummary._meta.db_table} m ON m.session_id = t.session_id"
        f" LEFT JOIN {Persona._meta.db_table} p ON p.id = s.persona_id"
        " WHERE t.id = %s"
    )
    if connection.features.has_select_for_update_of:
        sql += " FOR UPDATE OF t"
    with connection.cursor() as cursor:
        cursor.execute(sql, [Turn.Status.QUEUED.value, Turn.Status.RUNNING.value, p_uuid(turn_id)])
        row = cursor.fetchone()
    if row is None:
        return None
    payload = v_json(row[12])
    resume_state = v_json(row[26]) if row[26] is not None else None
    return _ClaimRow(
        turn_id=v_uuid(row[0]),  # type: ignore[arg-type]
        status=row[1],
        attempts=int(row[2]),
        lease_owner=row[3] or "",
        lease_expires_at=v_datetime(row[4]),
        cancel_requested=bool(row[5]),
        started_at=v_datetime(row[6]),
        tenant_id=v_uuid(row[7]),  # type: ignore[arg-type]
        session_id=v_uuid(row[8]),  # type: ignore[arg-type]
        user_event_id=int(row[9]),
        user_event_uuid=v_uuid(row[10]),  # type: ignore[arg-type]
        user_seq=int(row[11]),
        payload=payload if isinstance(payload, dict) else {},
        user_occurred_at=v_datetime(row[13]),
        persona_id=v_uuid(row[14]),
        summary=row[15] or "",
        summary_covered=int(row[16] or 0),
        created_by_id=int(row[17]) if row[17] is not None else None,
        shared_memory=bool(row[18]),
        waits=bool(row[19]),
        position=int(row[20]) if row[20] is not None else None,
        tip_event_id=v_uuid(row[21]),
        user_parent_id=v_uuid(row[22]),
        session_branched=bool(row[23]),
        summary_event_id=v_uuid(row[24]),
        awaiting_approval=bool(row[25]),
        resume_state=resume_state if isinstance(resume_state, dict) else None,
    )


def turn_leases_renew(*, owners: dict[str, uuid.UUID], batch: int = 500) -> tuple[set[str], set[str]]:
    """Extend the leases of many running turns (``owner -> turn_id``) in two statements per batch.

    Returns the owners that still hold their turn, and those of them whose turn
    was asked to cancel.
    """
    held: set[str] = set()
    cancelled: set[str] = set()
    expires = timezone.now() + _lease_delta()
    pairs = list(owners.items())
    for start in range(0, len(pairs), batch):
        chunk = dict(pairs[start : start + batch])
        rows = Turn.objects.filter(pk__in=list(chunk.values()), status=Turn.Status.RUNNING).values_list(
            "pk", "lease_owner", "cancel_requested"
        )
        mine = [(pk, owner, cancel) for pk, owner, cancel in rows if chunk.get(owner) == pk]
        if not mine:
            continue
        Turn.objects.filter(
            pk__in=[pk for pk, _, _ in mine],
            lease_owner__in=[owner for _, owner, _ in mine],
            status=Turn.Status.RUNNING,
        ).update(lease_expires_at=expires)
        held.update(owner for _, owner, _ in mine)
        cancelled.update(owner for _, owner, cancel in mine if cancel)
    return held, cancelled


def turn_is_cancel_requested(*, turn_id: uuid.UUID) -> bool:
    return Turn.objects.filter(pk=turn_id, cancel_requested=True).exists()


def turn_emit(*, claim: ClaimedTurn, type: str, data: dict[str, Any]) -> SessionEvent:
    """Persist a non-terminal event of a running turn, if this worker still owns it."""
    event_id = uuid.uuid4()
    with transaction.atomic():
        _lock_owned(claim, tip=event_id)
        event = event_append(
            session_id=claim.session_id,
            type=type,
            data=data,
            reuse=claim.reserved_cursor_take(),
            attach=claim.attach_next(),
            event_id=event_id,
        )
    claim.tip.event_id = event.event_id
    return event


def _lock_owned(claim: ClaimedTurn, *, tip: uuid.UUID) -> None:
    """Lock the turn's row and record ``tip`` as its newest event, or raise LeaseLost if this
    worker no longer runs it (one statement)."""
    owned = Turn.objects.filter(pk=claim.turn_id, status=Turn.Status.RUNNING, lease_owner=claim.owner).update(
        tip_event_id=tip
    )
    if not owned:
        raise LeaseLost(str(claim.turn_id))
