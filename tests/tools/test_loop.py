"""The turn's wait for its tool runs: wake-ups, the database fallback, deadlines, cancellation."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import redis
from django.db import connection
from django.utils import timezone

from conversations.models import Session, SessionEvent, Turn
from conversations.turn.claim import turn_claim
from conversations.turn.end import turn_ended
from conversations.turn.tool_calls import PlannedCall, ToolCall
from conversations.turn.tool_loop import wait_for_runs
from conversations.turn.types import ClaimedTurn
from conversations.turn.watch import CANCELLED, Watched, turn_watch
from somaagent.models import Tenant
from tools.execute import wake_turn
from tools.models import ToolRun

pytestmark = pytest.mark.django_db(transaction=True)


def claimed_turn() -> ClaimedTurn:
    tenant = Tenant.objects.create(name=f"t{time.monotonic_ns()}")
    session = Session.objects.create(tenant=tenant, last_seq=1)
    event = SessionEvent.objects.create(session=session, seq=1, type="user.message", role="user", payload={})
    turn = Turn.objects.create(tenant=tenant, session=session, user_event=event)
    claim = turn_claim(turn_id=turn.pk, owner="test-owner", ended=turn_ended)
    assert claim is not None
    return claim


@pytest.fixture
def watching() -> Iterator[Callable[[ClaimedTurn], Watched]]:
    """Register turns with the process's watcher (lease, cancel) as the runner does; unregister after."""
    watched: list[Watched] = []

    def watch(claim: ClaimedTurn) -> Watched:
        watched.append(turn_watch().watch(claim))
        return watched[-1]

    yield watch
    for w in watched:
        turn_watch().unwatch(w)


def pending(claim: ClaimedTurn, *, deadline_in: float = 30) -> PlannedCall:
    run = ToolRun.objects.create(
        tenant_id=claim.tenant_id,
        session_id=claim.session_id,
        turn_id=claim.turn_id,
        call_id="c0",
        tool="current_time",
        deadline_at=timezone.now() + timedelta(seconds=deadline_in),
        timeout_seconds=1,
    )
    return PlannedCall(
        call=ToolCall(call_id="c0", name="current_time", arguments="{}"), args={}, timeout=1, run=run
    )


def finish_later(run: ToolRun, *, wake: bool, after: float = 0.5) -> threading.Thread:
    def work() -> None:
        time.sleep(after)
        ToolRun.objects.filter(pk=run.pk).update(status="success", result={"ok": 1}, duration_ms=5)
        if wake:
            wake_turn(turn_id=run.turn_id, request_id=run.pk)
        connection.close()

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def results(claim: ClaimedTurn) -> list[dict]:
    return [e.payload for e in SessionEvent.objects.filter(session_id=claim.session_id, type="tool.result")]


def test_a_finished_run_is_picked_up_and_its_result_emitted(watching) -> None:
    claim = claimed_turn()
    plan = pending(claim)
    run = plan.run
    assert run is not None
    worker = finish_later(run, wake=True)
    assert wait_for_runs(claim=claim, planned=[plan], watched=watching(claim)) is None
    worker.join()
    assert results(claim) == [
        {
            "request_id": str(run.pk),
            "tool_name": "current_time",
            "status": "success",
            "result": {"ok": 1},
            "duration_ms": 5,
        }
    ]


def test_without_redis_the_database_is_polled(monkeypatch, watching) -> None:
    def down():
        raise redis.ConnectionError("redis is down")

    monkeypatch.setattr("conversations.turn.tool_loop.sync_redis", down)
    claim = claimed_turn()
    plan = pending(claim)
    worker = finish_later(plan.run, wake=False)  # type: ignore[arg-type]
    assert wait_for_runs(claim=claim, planned=[plan], watched=watching(claim)) is None
    worker.join()
    assert [r["status"] for r in results(claim)] == ["success"]


def test_a_run_past_its_deadline_is_marked_timeout_by_the_turn(watching) -> None:
    claim = claimed_turn()
    plan = pending(claim, deadline_in=0.5)
    assert wait_for_runs(claim=claim, planned=[plan], watched=watching(claim)) is None
    (result,) = results(claim)
    assert result["status"] == "timeout" and result["result"]["error"] == "timeout"
    assert ToolRun.objects.get(pk=plan.run.pk).status == "timeout"  # type: ignore[union-attr]


def test_a_cancel_stops_the_wait(watching) -> None:
    claim = claimed_turn()
    plan = pending(claim)
    Turn.objects.filter(pk=claim.turn_id).update(cancel_requested=True)
    from somaagent.redis_client import key, sync_redis

    sync_redis().set(key("cancel", claim.turn_id), "1", ex=60)
    assert wait_for_runs(claim=claim, planned=[plan], watched=watching(claim)) == CANCELLED
    assert results(claim) == []
