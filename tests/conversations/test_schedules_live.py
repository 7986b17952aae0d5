"""Schedules end to end (issue 19): the real beat sends each due time once, a real worker
answers it as an ordinary turn, the run history records it, and failures pause the schedule."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conversations.schedules.models import Schedule, ScheduleRun
from tests.conversations.api_support import Api
from tests.live import VENV_BIN, LiveSystem, Proc, procfile_argv, wait_until

pytestmark = pytest.mark.integration


def _make(key: str, **body: Any) -> Schedule:
    """Made in this process (its minimum interval is lowered to a second for the test); the
    live beat and worker run it."""
    r = Api(key=key).call("post", "/v1/schedules", json_body={"name": "every second", **body})
    assert r.status_code == 201, r.content
    return Schedule.objects.get(pk=json.loads(r.content)["id"])


def _runs(schedule: Schedule) -> list[ScheduleRun]:
    return list(ScheduleRun.objects.filter(schedule=schedule).order_by("due_at"))


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
        Schedule.objects.filter(pk=schedule.pk).update(enabled=False)
    finally:
        second_beat.stop()
    runs = _runs(schedule)
    due_times = [r.due_at for r in runs]
    assert len(due_times) == len(set(due_times)), "a due time ran twice"
    done = [r for r in runs if r.status == "completed"]
    assert all(r.turn_id and r.session_id and r.ended_at for r in done)
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
