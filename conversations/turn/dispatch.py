"""The order turns run in: dispatch through the outbox, the turn's insert (queued behind an
earlier turn of its session, or dispatched at once), the successor a turn's end dispatches, and
the sweep that dispatches again a turn whose worker died (its lease ran out) or whose task was
never picked up."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from conversations.models import SessionEvent, Turn
from conversations.turn.types import TURN_TOPIC
from somaagent.outbox import outbox_enqueue
from somaagent.sql import insert_objects, p_datetime, p_uuid, v_datetime

log = logging.getLogger(__name__)


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
ORDER_T_E = "COALESCE(t.position, e.seq)"


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
        f" ON t.user_event_id = e.id WHERE t.session_id = %s AND t.status IN (%s, %s) AND {ORDER_T_E} < %s)"
        " THEN NULL ELSE %s END"
    )
    place = user_event.seq if position is None else position
    params = [p_uuid(session_id), *map(str, Turn.ACTIVE_STATUSES), place, p_datetime(now)]
    [(dispatched_at,)] = insert_objects(
        [turn], expressions={"dispatched_at": (waits, params)}, returning=("dispatched_at",)
    )
    turn.dispatched_at = v_datetime(dispatched_at)
    return turn


def has_active_predecessor(turn: Turn) -> bool:
    place = turn.position if turn.position is not None else turn.user_event.seq
    return (
        Turn.objects.annotate(place=turn_order())
        .filter(session_id=turn.session_id, status__in=Turn.ACTIVE_STATUSES, place__lt=place)
        .exists()
    )


def turn_dispatch_successor(session_id: uuid.UUID) -> None:
    successor = (
        Turn.objects.filter(session_id=session_id, status=Turn.Status.QUEUED)
        .select_related("user_event")
        .order_by(turn_order())
        .first()
    )
    if successor is not None:
        turn_dispatch(turn=successor, reason="after")


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
            if has_active_predecessor(turn):
                continue
            turn_dispatch(turn=turn, reason="stale")
            counts["stale_queued"] += 1
    return counts
