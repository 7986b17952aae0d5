"""The turn lifecycle in the database: dispatch, claim, lease, finish, sweep.

A turn is claimed by exactly one worker at a time under a lease
(``lease_owner`` + ``lease_expires_at``) that the running worker renews. A
redelivered or duplicated task finds the turn finished or leased and does
nothing. When a worker dies its lease runs out and ``turn_sweep`` dispatches
the turn again; the next claim restarts the reply (``assistant.started`` with
``restart: true``). Turns of one session run one after another, in order.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from conversations.models import EventType, Session, SessionEvent, SessionSummary, Turn
from conversations.services.events import Attach, attach_after, attach_under, event_append
from memory.port import namespace_for
from somaagent.context import adopt_request_id
from somaagent.models import Persona
from somaagent.outbox import outbox_enqueue
from somaagent.redis_client import key, sync_redis
from somaagent.sql import insert_objects, p_datetime, p_uuid, v_datetime, v_json, v_uuid

log = logging.getLogger(__name__)

TURN_TOPIC = "conversation.turn"
TURN_TASK = "conversation.run_turn"

TERMINAL_STATUS = {
    EventType.ASSISTANT_FINAL: Turn.Status.COMPLETED,
    EventType.ASSISTANT_ERROR: Turn.Status.FAILED,
    EventType.ASSISTANT_CANCELLED: Turn.Status.CANCELLED,
}


class LeaseLost(Exception):
    """Another worker owns the turn now (or it ended): stop without writing."""


@dataclass(frozen=True)
class ClaimedTurn:
    """A turn this worker holds the lease of, with what its run needs from the claim's one read."""

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
    user_metadata: dict[str, Any] | None = None
    user_occurred_at: datetime | None = None
    summary: str = ""  # the session's running summary of older messages
    summary_covered: int = 0  # the last cursor the summary covers
    memory_namespace: str = ""  # where its memories are written and recalled (memory.port)
    session_owner_id: Any = None  # the member who started the session (their private documents)
    # The cursor assistant.started took for the turn's first delta (``reserved_cursor_take``).
    first_cursor: ReservedCursor | None = field(default=None, compare=False)
    regenerated: bool = False  # another reply to a message that has one: its branch starts there
    user_parent_id: uuid.UUID | None = None  # the event before the message on its branch
    session_branched: bool = False  # the session has more than one branch
    summary_event_id: uuid.UUID | None = None  # the last message the summary covers
    # The turn's newest persisted event: where its next one attaches (``attach_next``).
    tip: TurnTip = field(default_factory=lambda: TurnTip(None), compare=False)

    def attach_next(self) -> Attach:
        """Where the turn's next persisted event goes: after its newest one, or, for its first,
        after its message (a regenerated reply: right under it, beside the other replies)."""
        tip = self.tip.event_id
        if tip is not None:
            return attach_after(tip)
        return attach_under(self.user_event_uuid) if self.regenerated else attach_after(self.user_event_uuid)

    def reserved_cursor_take(self) -> int | None:
        """The cursor the claim committed for the turn's first delta, to whichever of the turn's
        writers needs a cursor first (a delta, or a persisted event when no delta came first:
        it reuses it, so an unused reservation leaves no hole); None once taken."""
        return self.first_cursor.take() if self.first_cursor is not None else None


class TurnTip:
    """The event id of a running turn's newest persisted event (None before its first)."""

    def __init__(self, event_id: uuid.UUID | None) -> None:
        self.event_id = event_id


class ReservedCursor:
    def __init__(self, seq: int) -> None:
        self.seq: int | None = seq
        self._lock = threading.Lock()

    def take(self) -> int | None:
        with self._lock:
            seq, self.seq = self.seq, None
        return seq


@dataclass(frozen=True)
class TurnEnd:
    """How a turn ended, for what follows its end (conversations.services.turn_end)."""

    turn_id: uuid.UUID
    tenant_id: uuid.UUID
    session_id: uuid.UUID
    persona_id: uuid.UUID | None
    user_event_uuid: uuid.UUID
    user_message: str
    user_occurred_at: datetime | None
    event: SessionEvent  # the terminal event
    model: str = ""
    usage: dict[str, int] = field(default_factory=dict)
    claim: ClaimedTurn | None = None  # when a worker ran it
    analysis: dict[str, Any] | None = None  # the route's record (turn_analyses)
    history_full: bool = False  # the prompt's history window was full: older messages exist
    title_automatic: bool = False  # the session's title is still its first words

    @property
    def type(self) -> str:
        return self.event.type

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.event.payload)


Ended = Callable[[TurnEnd], None]


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


# A turn's place in its session's order (``t`` the turn, ``e`` its message), in SQL and the ORM.
_ORDER_T_E = "COALESCE(t.position, e.seq)"


def turn_order() -> Coalesce:
    return Coalesce("position", "user_event__seq")


def turn_insert(
    *,
    tenant_id: uuid.UUID,
    session_id: uuid.UUID,
    user_event: SessionEvent,
    new_session: bool,
    position: int | None = None,
) -> Turn:
    """Insert the turn that answers ``user_event`` in the current transaction, in one statement.

    Turns of a session run in the order of their message's cursor, or of ``position``, a
    cursor the caller took (another reply to an earlier message). It is dispatched now
    (``dispatched_at`` set) unless an earlier turn of its session is still active: then it
    waits, and that one dispatches it when it ends. The check runs in the INSERT itself,
    after the cursor was taken (the row lock orders concurrent accepts of one session).
    """
    turn = Turn(tenant_id=tenant_id, session_id=session_id, user_event_id=user_event.pk, position=position)
    now = timezone.now()
    if new_session:
        turn.dispatched_at = now
        insert_objects([turn])
        return turn
    waits = (
        f"CASE WHEN EXISTS (SELECT 1 FROM {Turn._meta.db_table} t INNER JOIN {SessionEvent._meta.db_table} e"
        f" ON t.user_event_id = e.id WHERE t.session_id = %s AND t.status IN (%s, %s) AND {_ORDER_T_E} < %s)"
        " THEN NULL ELSE %s END"
    )
    place = user_event.seq if position is None else position
    params = [p_uuid(session_id), *map(str, Turn.ACTIVE_STATUSES), place, p_datetime(now)]
    [(dispatched_at,)] = insert_objects(
        [turn], expressions={"dispatched_at": (waits, params)}, returning=("dispatched_at",)
    )
    turn.dispatched_at = v_datetime(dispatched_at)
    return turn


def _has_active_predecessor(turn: Turn) -> bool:
    place = turn.position if turn.position is not None else turn.user_event.seq
    return (
        Turn.objects.annotate(place=turn_order())
        .filter(session_id=turn.session_id, status__in=Turn.ACTIVE_STATUSES, place__lt=place)
        .exists()
    )


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
        if row.cancel_requested or row.attempts >= settings.SOMA.turn_max_attempts:
            turn = Turn.objects.select_related("user_event", "session").get(pk=row.turn_id)
            if row.cancel_requested:
                _finish_locked(turn, EventType.ASSISTANT_CANCELLED, {"partial": ""}, ended=ended)
            else:
                _finish_locked(
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
        attempt = row.attempts + 1
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
        )
        model = start(claim) if start is not None else None
        started_id = uuid.uuid4() if model is not None else None
        Turn.objects.filter(pk=row.turn_id).update(
            attempts=attempt,
            status=Turn.Status.RUNNING,
            lease_owner=owner,
            lease_expires_at=now + _lease_delta(),
            started_at=row.started_at or now,
            tip_event_id=started_id or row.tip_event_id,
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
        f"  AND COALESCE(q.position, qe.seq) < {_ORDER_T_E}),"
        " t.position, t.tip_event_id, e.parent_id, s.branched, m.covered_event_id"
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


def turn_finish(
    *,
    claim: ClaimedTurn,
    type: str,
    data: dict[str, Any],
    ended: Ended,
    model: str = "",
    usage: dict[str, int] | None = None,
    analysis: dict[str, Any] | None = None,
    history_full: bool = False,
) -> SessionEvent:
    """Write the turn's one terminal event and release it, if this worker still owns it.

    The turn's row is ended by one conditional update (it locks the row and
    checks the lease at once); ``ended`` then runs in the same transaction.
    """
    with transaction.atomic():
        successor_waits, title_automatic = _end_owned(
            claim,
            status=TERMINAL_STATUS[EventType(type)],
            error_code=str(data.get("code", ""))[:50] if type == EventType.ASSISTANT_ERROR else "",
            model=model,
            usage=usage or {},
        )
        # reply_to names the user event this terminal event answers, like assistant.started's.
        event = event_append(
            session_id=claim.session_id,
            type=type,
            data={**data, "reply_to": str(claim.user_event_uuid)},
            reuse=claim.reserved_cursor_take(),
            attach=claim.attach_next(),
        )
        ended(
            TurnEnd(
                turn_id=claim.turn_id,
                tenant_id=claim.tenant_id,
                session_id=claim.session_id,
                persona_id=claim.persona_id,
                user_event_uuid=claim.user_event_uuid,
                user_message=claim.user_message,
                user_occurred_at=claim.user_occurred_at,
                event=event,
                model=model,
                usage=usage or {},
                claim=claim,
                analysis=analysis,
                history_full=history_full,
                title_automatic=title_automatic,
            )
        )
        if successor_waits:
            _dispatch_successor(claim.session_id)
        return event


def _end_owned(
    claim: ClaimedTurn, *, status: str, error_code: str, model: str, usage: dict[str, int]
) -> tuple[bool, bool]:
    """End the turn's row if this worker still owns it, in one statement (which also locks it);
    returns whether a later turn of the session is queued and whether the session's title is
    still automatic. LeaseLost if the worker does not own it."""
    table = Turn._meta.db_table
    usage_value = Turn._meta.get_field("usage").get_db_prep_save(usage, connection)  # type: ignore[union-attr]
    turn_pk = Turn._meta.pk.get_db_prep_value(claim.turn_id, connection)  # type: ignore[union-attr]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET status = %s, finished_at = %s, lease_owner = '', lease_expires_at = NULL,"
            " error_code = %s, model = %s, usage = %s"
            " WHERE id = %s AND status = %s AND lease_owner = %s"
            f" RETURNING EXISTS (SELECT 1 FROM {table} q WHERE q.session_id = {table}.session_id"
            " AND q.status = %s),"
            f" (SELECT title_automatic FROM {Session._meta.db_table} s WHERE s.id = {table}.session_id)",
            [
                str(status),
                connection.ops.adapt_datetimefield_value(timezone.now()),
                error_code,
                model,
                usage_value,
                turn_pk,
                Turn.Status.RUNNING.value,
                claim.owner,
                Turn.Status.QUEUED.value,
            ],
        )
        row = cursor.fetchone()
    if row is None:
        raise LeaseLost(str(claim.turn_id))
    return bool(row[0]), bool(row[1])


def _finish_locked(turn: Turn, type: str, data: dict[str, Any], *, ended: Ended) -> SessionEvent:
    """End a turn no worker runs (cancelled while queued, out of attempts); its row is locked."""
    user_event = turn.user_event
    event = event_append(
        session_id=turn.session_id,
        type=type,
        data={**data, "reply_to": str(user_event.event_id)},
        attach=turn_attach(turn),
    )
    turn.status = TERMINAL_STATUS[EventType(type)]
    turn.finished_at = timezone.now()
    turn.lease_owner = ""
    turn.lease_expires_at = None
    turn.error_code = data.get("code", "") if type == EventType.ASSISTANT_ERROR else ""
    turn.save(update_fields=["status", "finished_at", "lease_owner", "lease_expires_at", "error_code"])
    ended(
        TurnEnd(
            turn_id=turn.pk,
            tenant_id=turn.tenant_id,
            session_id=turn.session_id,
            persona_id=turn.session.persona_id,
            user_event_uuid=user_event.event_id,
            user_message=str(user_event.payload.get("message", "")),
            user_occurred_at=user_event.occurred_at,
            event=event,
        )
    )
    _dispatch_successor(turn.session_id)
    return event


def turn_attach(turn: Turn) -> Attach:
    """Where the next event of a turn no worker runs goes (see ``ClaimedTurn.attach_next``)."""
    if turn.tip_event_id is not None:
        return attach_after(turn.tip_event_id)
    if turn.position is not None:
        return attach_under(turn.user_event.event_id)
    return attach_after(turn.user_event.event_id)


def _dispatch_successor(session_id: uuid.UUID) -> None:
    successor = (
        Turn.objects.filter(session_id=session_id, status=Turn.Status.QUEUED)
        .select_related("user_event")
        .order_by(turn_order())
        .first()
    )
    if successor is not None:
        turn_dispatch(turn=successor, reason="after")


def turn_request_cancel(*, session: Session, ended: Ended) -> list[uuid.UUID]:
    """Ask every active turn of the session to stop; queued ones end at once."""
    cancelled: list[uuid.UUID] = []
    with transaction.atomic():
        turns = list(
            Turn.objects.select_for_update(of=("self",))
            .filter(session=session, status__in=Turn.ACTIVE_STATUSES)
            .select_related("user_event", "session")
        )
        for turn in turns:
            turn.cancel_requested = True
            turn.save(update_fields=["cancel_requested"])
            cancelled.append(turn.pk)
            if turn.status == Turn.Status.QUEUED:
                _finish_locked(turn, EventType.ASSISTANT_CANCELLED, {"partial": ""}, ended=ended)
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
