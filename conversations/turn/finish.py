"""The end of a turn: its one terminal event, written by the worker that owns it
(``turn_finish``) or, for a turn no worker runs (cancelled while queued or parked, out of
attempts), under its row lock (``turn_finish_unrun``); cancel requests."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from conversations.models import EventType, Session, SessionEvent, Turn
from conversations.services.events import Attach, attach_after, attach_under, event_append
from conversations.services.summary import SummaryDue
from conversations.turn.dispatch import turn_dispatch_successor
from conversations.turn.types import TERMINAL_STATUS, ClaimedTurn, Ended, LeaseLost, TurnEnd
from somaagent.redis_client import key, sync_redis

log = logging.getLogger(__name__)


def turn_finish(
    *,
    claim: ClaimedTurn,
    type: str,
    data: dict[str, Any],
    ended: Ended,
    model: str = "",
    usage: dict[str, int] | None = None,
    analysis: dict[str, Any] | None = None,
    summary_due: SummaryDue | None = None,
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
                summary_due=summary_due,
                title_automatic=title_automatic,
            )
        )
        if successor_waits:
            turn_dispatch_successor(claim.session_id)
        return event


def _end_owned(
    claim: ClaimedTurn, *, status: str, error_code: str, model: str, usage: dict[str, int]
) -> tuple[bool, bool]:
    """End the turn's row if this worker still owns it, in one statement (which also locks it);
    returns whether a later turn of the session is queued and whether the session's title is
    still automatic. LeaseLost if the worker does not own it."""
    table = Turn._meta.db_table
    usage_value = Turn._meta.get_field("usage").get_db_prep_save(usage, connection)
    turn_pk = Turn._meta.pk.get_db_prep_value(claim.turn_id, connection)
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


def turn_finish_unrun(turn: Turn, type: str, data: dict[str, Any], *, ended: Ended) -> SessionEvent:
    """End a turn no worker runs (cancelled while queued or parked, out of attempts); its row is
    locked."""
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
    turn.awaiting_approval = False
    turn.resume_state = None
    turn.save(
        update_fields=[
            "status",
            "finished_at",
            "lease_owner",
            "lease_expires_at",
            "error_code",
            "awaiting_approval",
            "resume_state",
        ]
    )
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
    turn_dispatch_successor(turn.session_id)
    return event


def turn_attach(turn: Turn) -> Attach:
    """Where the next event of a turn no worker runs goes (see ``ClaimedTurn.attach_next``)."""
    if turn.tip_event_id is not None:
        return attach_after(turn.tip_event_id)
    if turn.position is not None:
        return attach_under(turn.user_event.event_id)
    return attach_after(turn.user_event.event_id)


def turn_request_cancel(*, session: Session, ended: Ended) -> list[uuid.UUID]:
    """Ask every active turn of the session to stop; queued and parked ones end at once."""
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
            if turn.status == Turn.Status.QUEUED or turn.awaiting_approval:
                partial = "".join((turn.resume_state or {}).get("text") or [])  # a parked reply's text
                turn_finish_unrun(turn, EventType.ASSISTANT_CANCELLED, {"partial": partial}, ended=ended)
    for turn_id in cancelled:
        try:
            sync_redis().set(key("cancel", turn_id), "1", ex=3600)
        except Exception:  # the DB flag is authoritative; Redis only makes it fast
            log.warning("could not signal cancel through Redis", extra={"turn_id": str(turn_id)})
    return cancelled
