"""Schedules end to end (issue 19): the real beat sends each due time once, a real worker
answers it as an ordinary turn, the run history records it, and failures pause the schedule."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.utils import timezone

from conversations.models import SessionEvent, Turn
from conversations.schedules.models import Schedule, ScheduleRun
from tests.conversations.api_support import Api
from tests.conversations.support import send
from tests.live import VENV_BIN, LiveSystem, Proc, StubServer, procfile_argv, read_stream, wait_until

pytestmark = pytest.mark.integration


def _make(key: str, **body: Any) -> Schedule:
    """Made in this process (its minimum interval is lowered to a second for the test); the
    live beat and worker run it."""
    r = Api(key=key).call("post", "/v1/schedules", json_body={"name": "every second", **body})
    assert r.status_code == 201, r.content
    return Schedule.objects.get(pk=json.loads(r.content)["id"])


def _runs(schedule: Schedule) -> list[ScheduleRun]:
    return list(ScheduleRun.objects.filter(schedule=schedule).order_by("due_at"))


def _settled(schedule: Schedule) -> None:
    """Off, and its last turns ended: nothing of this test still writes to the database when a
    later test of this process flushes it."""
    Schedule.objects.filter(pk=schedule.pk).update(enabled=False)
    ScheduleRun.objects.filter(schedule=schedule, status="waiting").update(status="skipped")
    wait_until(
        lambda: not ScheduleRun.objects.filter(schedule=schedule, status="queued").exists(),
        timeout=90,
        what="the schedule's last turns ended",
    )


def test_each_due_time_runs_once_as_a_turn_even_with_two_beats(
    live_system: LiveSystem, tenant_key: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOMA_SCHEDULE_MIN_INTERVAL_SECONDS", "1")
    # A second beat, as an operator who started one too many would: both tick every second.
    argv = procfile_argv("beat", live_system.env)
    argv[0] = str(VENV_BIN / argv[0])
    second_beat = Proc("beat-2", argv, live_system.env)
    try:
        schedule = _make(tenant_key.key, message="Tick at {time} [[reply=tock]]", interval_seconds=1)
        wait_until(
            lambda: sum(r.status == "completed" for r in _runs(schedule)) >= 4,
            timeout=60,
            what="four runs answered",
        )
    finally:
        second_beat.stop()
        _settled(schedule)
    runs = _runs(schedule)
    due_times = [r.due_at for r in runs]
    assert len(due_times) == len(set(due_times)), "a due time ran twice"
    done = [r for r in runs if r.status == "completed"]
    assert all(r.turn_id and r.session_id and r.started_at and r.ended_at and r.tokens for r in done)
    assert len({r.session_id for r in done}) == len(done), "each run in a new chat of its own"
    history = json.loads(Api(key=tenant_key.key).call("get", f"/v1/schedules/{schedule.pk}/runs").content)
    assert {r["id"] for r in history["runs"]} >= {str(r.pk) for r in done}


def test_a_schedule_whose_runs_keep_failing_is_paused(
    live_system: LiveSystem, tenant_key: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOMA_SCHEDULE_MIN_INTERVAL_SECONDS", "1")
    schedule = _make(tenant_key.key, message="Fail [[status=400]]", interval_seconds=1)
    wait_until(
        lambda: not Schedule.objects.get(pk=schedule.pk).enabled, timeout=60, what="the schedule paused"
    )
    schedule.refresh_from_db()
    assert schedule.paused_reason.startswith("Paused after 3 failed runs in a row")
    assert schedule.consecutive_failures == 3
    failed = [r for r in _runs(schedule) if r.status == "failed"]
    assert len(failed) == 3
    body = json.loads(Api(key=tenant_key.key).call("get", f"/v1/schedules/{schedule.pk}").content)
    assert body["enabled"] is False and body["paused_reason"].startswith("Paused after 3")


def _user_texts(stub: StubServer) -> list[str]:
    bodies = httpx.get(f"{stub.url}/_requests", timeout=10).json()
    return [str(b["messages"][-1]["content"]) for b in bodies]


def test_a_tenants_flood_of_background_runs_does_not_hold_up_another_tenants_chat(
    live_system: LiveSystem, tenant_key: Any, other_tenant_key: Any, llm_stub: StubServer
) -> None:
    """Tenant A has 1,000 due runs (more than a worker has threads); tenant B sends a message.
    Told by the order in which the model is asked and by what runs at once (not by wall time):
    B's request comes after at most a few of A's, and A has four turns in the workers at a time."""
    bg, fg = f"bg-{uuid.uuid4().hex}", f"fg-{uuid.uuid4().hex}"
    flood = _make(tenant_key.key, message=f"{bg} [[tokens=5]] [[delay=0.3]]", cron="0 9 1 1 *")
    start = timezone.now() - timedelta(minutes=10)
    ScheduleRun.objects.bulk_create(
        ScheduleRun(schedule=flood, tenant_id=flood.tenant_id, due_at=start + timedelta(seconds=i))
        for i in range(1000)
    )
    try:
        wait_until(
            lambda: sum(bg in t for t in _user_texts(llm_stub)) >= 4, timeout=30, what="the flood flowing"
        )
        before = sum(bg in t for t in _user_texts(llm_stub))
        accepted = send(live_system, other_tenant_key.key, f"{fg} [[reply=hello]]")
        read_stream(live_system, other_tenant_key.key, accepted["session_id"])
        texts = _user_texts(llm_stub)
        position = next(i for i, t in enumerate(texts) if fg in t)
        ahead = sum(bg in t for t in texts[:position]) - before
        # At most SOMA_SCHEDULE_TENANT_CONCURRENCY (4) of A's run at once: B's turn waits behind
        # those already queued, not behind the 1,000.
        assert ahead <= 8, f"{ahead} of the flood's turns reached the model first"
        running = ScheduleRun.objects.filter(schedule=flood, status="queued").count()
        assert running <= 4
    finally:
        _settled(flood)


def test_a_killed_worker_and_a_restarted_beat_still_run_each_due_time_once(
    live_system: LiveSystem, tenant_key: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOMA_SCHEDULE_MIN_INTERVAL_SECONDS", "1")
    schedule = _make(tenant_key.key, message="Count [[tokens=20]] [[delay=0.1]]", interval_seconds=2)
    try:

        def running_run() -> ScheduleRun | None:
            for run in _runs(schedule):
                if run.turn_id and Turn.objects.filter(pk=run.turn_id, status=Turn.Status.RUNNING).exists():
                    return run
            return None

        killed = wait_until(running_run, timeout=30, what="a scheduled turn running")
        live_system.kill_workers()  # SIGKILL mid-reply
        assert live_system.beat is not None
        live_system.beat.kill()  # and the beat, which starts again a moment later
        live_system.ensure_worker()
        time.sleep(1)
        live_system.start_beat()
        wait_until(
            lambda: sum(r.status == "completed" and r.due_at > killed.due_at for r in _runs(schedule)) >= 2,
            timeout=60,
            what="runs after the restart",
        )
    finally:
        _settled(schedule)
    wait_until(
        lambda: Turn.objects.get(pk=killed.turn_id).status == Turn.Status.COMPLETED,
        timeout=60,
        what="the killed run's turn finished elsewhere",
    )
    runs = _runs(schedule)
    assert len({r.due_at for r in runs}) == len(runs), "a due time ran twice"
    # Every due time is on the schedule's grid (anchor + k * 2 s): none invented by a restart.
    assert all(((r.due_at - schedule.anchor).total_seconds() / 2).is_integer() for r in runs)
    for run in runs:
        if run.turn_id:
            finals = SessionEvent.objects.filter(
                session_id=str(run.session_id), type="assistant.final"
            ).count()
            assert finals <= 1, f"run {run.pk} answered {finals} times"
    turn = Turn.objects.get(pk=killed.turn_id)
    assert turn.attempts == 2
    wait_until(
        lambda: ScheduleRun.objects.get(pk=killed.pk).status == "completed",
        timeout=10,
        what="the run recorded",
    )
