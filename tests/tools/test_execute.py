"""The tool task's service: claimed once, late results discarded, lost runs closed by the sweep."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.models import Session, SessionEvent, Turn
from somaagent.models import Tenant
from tools.execute import tool_run_execute, tool_run_sweep
from tools.models import ToolRun

pytestmark = pytest.mark.django_db


def make_run(tool: str = "current_time", args: dict | None = None, **fields) -> ToolRun:
    tenant = Tenant.objects.create(name=f"t{Tenant.objects.count()}")
    session = Session.objects.create(tenant=tenant)
    event = SessionEvent.objects.create(session=session, seq=1, type="user.message", role="user", payload={})
    turn = Turn.objects.create(tenant=tenant, session=session, user_event=event)
    defaults = {"deadline_at": timezone.now() + timedelta(seconds=30), "timeout_seconds": 5}
    return ToolRun.objects.create(
        tenant=tenant,
        session=session,
        turn=turn,
        call_id="c0",
        tool=tool,
        args=args or {},
        **{**defaults, **fields},
    )


def test_a_run_executes_once_however_often_its_task_is_delivered() -> None:
    run = make_run()
    assert tool_run_execute(request_id=run.pk, worker="w1") == "success"
    first = ToolRun.objects.get(pk=run.pk)
    assert tool_run_execute(request_id=run.pk, worker="w2") is None
    again = ToolRun.objects.get(pk=run.pk)
    assert again.result == first.result and again.worker == "w1" and again.status == "success"


def test_a_run_past_its_deadline_is_not_started() -> None:
    run = make_run(deadline_at=timezone.now() - timedelta(seconds=1))
    assert tool_run_execute(request_id=run.pk) is None
    assert ToolRun.objects.get(pk=run.pk).status == "pending"


def test_a_tool_error_is_recorded_as_an_error_result() -> None:
    run = make_run(args={"timezone": "Mars/Olympus"})
    assert tool_run_execute(request_id=run.pk) == "error"
    run.refresh_from_db()
    assert run.result["error"] == "invalid_arguments" and "Mars/Olympus" in run.result["message"]


def test_a_result_arriving_after_the_turn_gave_up_is_discarded(monkeypatch) -> None:
    run = make_run()
    from tools import execute

    real = execute._execute

    def turn_times_out_meanwhile(r):
        ToolRun.objects.filter(pk=r.pk).update(status="timeout", result={"error": "timeout"})
        return real(r)

    monkeypatch.setattr(execute, "_execute", turn_times_out_meanwhile)
    tool_run_execute(request_id=run.pk)
    run.refresh_from_db()
    assert run.status == "timeout" and run.result == {"error": "timeout"}


def test_the_sweep_closes_runs_nobody_will_finish() -> None:
    lost = make_run(status="running", deadline_at=timezone.now() - timedelta(minutes=5))
    recent = make_run(status="running")
    assert tool_run_sweep() == 1
    lost.refresh_from_db()
    recent.refresh_from_db()
    assert lost.status == "error" and lost.result["error"] == "lost"
    assert recent.status == "running"


@pytest.mark.django_db(transaction=True)
def test_a_tool_runs_without_holding_a_database_connection(monkeypatch) -> None:
    from dataclasses import replace

    from django.db import connections

    from tools.builtin import builtins_register
    from tools.registry import REGISTRY

    builtins_register()
    held: list[bool] = []

    def probe(args: dict, ctx: object) -> dict:
        held.append(any(c.connection is not None for c in connections.all(initialized_only=True)))
        return {"ok": True}

    monkeypatch.setitem(REGISTRY, "current_time", replace(REGISTRY["current_time"], run=probe))
    run = make_run()
    assert tool_run_execute(request_id=run.pk, worker="w1") == "success"
    assert held == [False]
