"""Deleting a session while its worker ends the turn: one waits for the other, neither deadlocks.

CI once answered 503 to ``DELETE /v1/sessions/{id}`` mid-reply: the delete stored
the turn's usage and then waited for the turn's row, while the worker held that row
and waited to store the same usage. PostgreSQL broke the cycle by killing one of
them. The interleaving is forced here: the delete pauses after its usage write until
the worker has either locked the turn or is seen waiting for a lock.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection, connections, transaction

from conversations.models import EventType, Session, Turn
from conversations.services import sessions
from conversations.services.events import event_append
from conversations.turn.claim import turn_claim
from conversations.turn.end import turn_ended
from conversations.turn.finish import turn_finish
from conversations.turn.types import LeaseLost, TurnEnd
from somaagent.budgets.services import budget_reserve
from somaagent.models import TokenUsage
from tests.conftest import make_tenant_key

pytestmark = pytest.mark.django_db(transaction=True)


def _running_turn() -> Turn:
    tenant: Any = make_tenant_key().tenant
    session = Session.objects.create(tenant=tenant)
    with transaction.atomic():
        event = event_append(
            session_id=session.pk, type=EventType.USER_MESSAGE, data={"message": "hi"}, publish=False
        )
        return Turn.objects.create(tenant=tenant, session=session, user_event=event)


def _someone_waits_for_a_lock() -> bool:
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock'"
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def test_deleting_a_session_while_its_worker_ends_the_turn_does_not_deadlock(monkeypatch) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite runs one writer at a time")
    turn = _running_turn()
    claim = turn_claim(turn_id=turn.pk, owner="w1", start=lambda c: "m", ended=turn_ended)
    assert claim is not None
    budget_reserve(
        turn_id=turn.pk, tenant_id=turn.tenant_id, persona_id=None, prompt_tokens=100, completion_tokens=500
    )
    usage_written = threading.Event()
    worker_locked = threading.Event()
    outcome: dict[str, Any] = {}

    forget = sessions.memory_forget_session

    def paused_forget(*, session: Any) -> None:
        # The delete has stored the turn's usage (if it got the turn at all); let the
        # worker run until it holds the turn or waits for a lock, then go on.
        usage_written.set()
        deadline = time.monotonic() + 10
        while not worker_locked.wait(0.05) and time.monotonic() < deadline:
            if _someone_waits_for_a_lock():
                break
        forget(session=session)

    monkeypatch.setattr(sessions, "memory_forget_session", paused_forget)

    def ended(end: TurnEnd) -> None:
        worker_locked.set()  # the worker holds the turn's row (its end is written)
        turn_ended(end)  # … and stores the usage

    def delete() -> None:
        try:
            sessions.session_delete(session=Session.objects.get(pk=turn.session_id))
            outcome["delete"] = "ok"
        except Exception as exc:  # the assertion below names it
            outcome["delete"] = repr(exc)
        finally:
            connections.close_all()

    def finish() -> None:
        try:
            turn_finish(claim=claim, type=EventType.ASSISTANT_CANCELLED, data={"partial": "ab"}, ended=ended)
            outcome["worker"] = "finished"
        except LeaseLost:
            outcome["worker"] = "lease lost"
        except Exception as exc:
            outcome["worker"] = repr(exc)
        finally:
            connections.close_all()

    deleting = threading.Thread(target=delete)
    deleting.start()
    assert usage_written.wait(10)
    finishing = threading.Thread(target=finish)
    finishing.start()
    deleting.join(30)
    finishing.join(30)

    assert outcome["delete"] == "ok"
    # The delete took the turn first, so the worker finds it gone and stops.
    assert outcome["worker"] == "lease lost"
    assert not Session.objects.filter(pk=turn.session_id).exists()
    assert TokenUsage.objects.filter(turn_id=turn.pk).count() == 1  # charged once, like a cancel
