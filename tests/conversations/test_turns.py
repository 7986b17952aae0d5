"""The turn lease in the database: claim, take-over, the sweep, the attempt limit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from conversations.models import EventType, Session, SessionEvent, Turn
from conversations.services.events import event_append
from conversations.turn.claim import turn_claim, turn_leases_renew
from conversations.turn.dispatch import turn_sweep
from conversations.turn.end import turn_ended
from conversations.turn.finish import turn_finish
from conversations.turn.types import LeaseLost
from somaagent.models import OutboxMessage
from tests.conftest import make_tenant_key

pytestmark = pytest.mark.django_db

GRACE = settings.SOMA.turn_redispatch_after_seconds


def _turn(session: Session | None = None, **fields: Any) -> Turn:
    tenant: Any = session.tenant if session is not None else make_tenant_key().tenant
    session = session or Session.objects.create(tenant=tenant)
    with transaction.atomic():
        event = event_append(
            session_id=session.pk, type=EventType.USER_MESSAGE, data={"message": "hi"}, publish=False
        )
        return Turn.objects.create(tenant=tenant, session=session, user_event=event, **fields)


def _dispatches(turn: Turn) -> list[str]:
    """The reasons of the outbox rows that dispatched ``turn``, oldest first."""
    rows = OutboxMessage.objects.filter(topic="conversation.turn").order_by("id")
    return [r.dedupe_key.split(":")[2] for r in rows if r.payload["turn_id"] == str(turn.pk)]


def _types(session_id: Any) -> list[str]:
    return list(
        SessionEvent.objects.filter(session_id=session_id).order_by("seq").values_list("type", flat=True)
    )


def _ago(seconds: float) -> Any:
    return timezone.now() - timedelta(seconds=seconds)


def test_an_expired_lease_is_dispatched_again_once() -> None:
    turn = _turn(status=Turn.Status.RUNNING, attempts=1, lease_owner="dead-worker", lease_expires_at=_ago(1))
    live = _turn(status=Turn.Status.RUNNING, attempts=1, lease_owner="busy", lease_expires_at=_ago(-30))

    assert turn_sweep()["expired"] == 1

    turn.refresh_from_db()
    assert _dispatches(turn) == ["lease-expired"]
    assert turn.status == Turn.Status.RUNNING and turn.lease_owner == ""
    # Not dispatched again while the new task waits in the queue (the grace period).
    assert turn.lease_expires_at is not None
    assert timezone.now() + timedelta(seconds=GRACE - 1) < turn.lease_expires_at
    turn_sweep()
    assert _dispatches(turn) == ["lease-expired"]
    assert _dispatches(live) == []


def test_the_new_worker_restarts_the_turn_and_the_old_one_loses_it() -> None:
    turn = _turn()
    old = turn_claim(turn_id=turn.pk, owner="w1", start=lambda c: "m", ended=turn_ended)
    assert old is not None and old.attempt == 1 and old.restart is False
    assert turn_claim(turn_id=turn.pk, owner="w2", start=lambda c: "m", ended=turn_ended) is None, (
        "a live lease is not taken"
    )

    Turn.objects.filter(pk=turn.pk).update(lease_expires_at=_ago(1))
    turn_sweep()
    new = turn_claim(turn_id=turn.pk, owner="w2", start=lambda c: "m", ended=turn_ended)
    assert new is not None and new.attempt == 2 and new.restart is True
    started = SessionEvent.objects.filter(session_id=turn.session_id, type=EventType.ASSISTANT_STARTED)
    assert [(e.payload["restart"], e.payload["reply_to"]) for e in started.order_by("seq")] == [
        (False, str(turn.user_event.event_id)),
        (True, str(turn.user_event.event_id)),
    ]

    held, cancelled = turn_leases_renew(owners={"w1": turn.pk, "w2": turn.pk})
    assert held == {"w2"} and cancelled == set(), "only the new owner keeps the lease"
    with pytest.raises(LeaseLost):
        turn_finish(claim=old, type=EventType.ASSISTANT_FINAL, data={"message": "late"}, ended=turn_ended)
    turn_finish(claim=new, type=EventType.ASSISTANT_FINAL, data={"message": "done"}, ended=turn_ended)
    assert _types(turn.session_id) == [
        "user.message",
        "assistant.started",
        "assistant.started",
        "assistant.final",
    ]
    assert turn_claim(turn_id=turn.pk, owner="w3", ended=turn_ended) is None, (
        "a finished turn is never run again"
    )


def test_a_queued_turn_that_was_never_picked_up_is_dispatched_again() -> None:
    stale = _turn(dispatched_at=_ago(GRACE + 1))
    fresh = _turn(dispatched_at=timezone.now())
    never = _turn(created_at=_ago(GRACE + 1))

    assert turn_sweep()["stale_queued"] == 2

    assert _dispatches(stale) == ["stale"] and _dispatches(never) == ["stale"]
    assert _dispatches(fresh) == []
    stale.refresh_from_db()
    assert stale.dispatched_at is not None and stale.dispatched_at > _ago(5)
    turn_sweep()
    assert _dispatches(stale) == ["stale"], "dispatching again restarts the grace period"


def test_a_queued_turn_behind_a_running_one_waits() -> None:
    first = _turn()
    claim = turn_claim(turn_id=first.pk, owner="w1", ended=turn_ended)
    assert claim is not None
    second = _turn(first.session, dispatched_at=_ago(GRACE + 1))

    turn_sweep()
    assert _dispatches(second) == []
    assert turn_claim(turn_id=second.pk, owner="w2", ended=turn_ended) is None

    # When the first ends, it dispatches the second.
    turn_finish(claim=claim, type=EventType.ASSISTANT_FINAL, data={"message": "ok"}, ended=turn_ended)
    assert _dispatches(second) == ["after"]
    assert turn_claim(turn_id=second.pk, owner="w2", ended=turn_ended) is not None


def test_after_the_last_attempt_the_turn_ends_with_worker_lost() -> None:
    limit = settings.SOMA.turn_max_attempts
    turn = _turn(status=Turn.Status.RUNNING, attempts=limit, lease_owner="dead", lease_expires_at=_ago(1))
    successor = _turn(turn.session)

    turn_sweep()
    assert turn_claim(turn_id=turn.pk, owner="w9", ended=turn_ended) is None

    turn.refresh_from_db()
    assert turn.status == Turn.Status.FAILED and turn.error_code == "worker_lost"
    assert turn.lease_owner == "" and turn.attempts == limit
    last = SessionEvent.objects.filter(session_id=turn.session_id).order_by("-seq").first()
    assert last is not None and last.type == EventType.ASSISTANT_ERROR
    assert last.payload["code"] == "worker_lost" and last.payload["retryable"] is True
    assert _dispatches(successor) == ["after"], "the next message of the session goes on"


def test_a_cancelled_queued_turn_ends_when_claimed() -> None:
    turn = _turn(cancel_requested=True)
    assert turn_claim(turn_id=turn.pk, owner="w1", ended=turn_ended) is None
    turn.refresh_from_db()
    assert turn.status == Turn.Status.CANCELLED
    assert _types(turn.session_id) == ["user.message", "assistant.cancelled"]


def test_claiming_a_deleted_turn_does_nothing() -> None:
    turn = _turn()
    turn_id = turn.pk
    turn.session.delete()
    assert turn_claim(turn_id=turn_id, owner="w1", ended=turn_ended) is None
