"""Workers killed while a tool runs: the turn still ends with exactly one final or error event."""

from __future__ import annotations

import uuid

import pytest

from tests.conversations.support import send
from tests.live import wait_until
from tests.tools.conftest import MAIN_QUEUES, TOOL_QUEUES
from tests.tools.helpers import call, of_type, turn_events
from tests.tools.test_sandbox import host_processes_with
from tools.models import ToolRun

pytestmark = pytest.mark.integration


def sandboxed_sleeper(seconds: int, then: str) -> str:
    """Code that starts a recognisable child process, then does ``then``."""
    return (
        "import subprocess, time\n"
        f"subprocess.Popen(['sleep', '{seconds}'])\n"
        "print('started', flush=True)\n"
        f"{then}"
    )


def start_slow_tool(system, key: str, code: str) -> tuple[dict, ToolRun]:
    accepted = send(system, key, call("python", {"code": code}))
    run = wait_until(
        lambda: ToolRun.objects.filter(session_id=accepted["session_id"], status="running").first(),
        timeout=60,
        what="the tool to start running",
    )
    return accepted, run


def test_tools_worker_killed_mid_run_the_turn_ends_once_with_a_timeout_result(live_system, tenant_key):
    seconds = 800000 + uuid.uuid4().int % 99999
    accepted, run = start_slow_tool(
        live_system, tenant_key.key, sandboxed_sleeper(seconds, "time.sleep(600)")
    )
    wait_until(lambda: host_processes_with(f"sleep {seconds}"), timeout=30, what="the sandbox to run")
    worker = live_system.worker_for(TOOL_QUEUES)
    assert worker is not None
    worker.kill()  # SIGKILL to the whole process group
    wait_until(
        lambda: not host_processes_with(f"sleep {seconds}"),
        timeout=15,
        what="the sandbox to die with its worker",
    )
    live_system.ensure_worker()

    events = turn_events(live_system, tenant_key.key, accepted, timeout=120)
    assert events[-1]["type"] == "assistant.final"
    (result,) = of_type(events, "tool.result")
    assert result["data"]["request_id"] == str(run.pk) and result["data"]["status"] == "timeout"
    run.refresh_from_db()
    assert run.status == "timeout"


def test_every_worker_killed_mid_run_the_turn_restarts_and_ends_once(live_system, tenant_key):
    seconds = 700000 + uuid.uuid4().int % 99999
    code = sandboxed_sleeper(seconds, "time.sleep(3)\nprint('done')")
    accepted, first_run = start_slow_tool(live_system, tenant_key.key, code)
    for queues in (MAIN_QUEUES, TOOL_QUEUES):
        worker = live_system.worker_for(queues)
        assert worker is not None
        worker.kill()
    wait_until(lambda: not host_processes_with(f"sleep {seconds}"), timeout=15, what="the sandbox to die")
    live_system.ensure_worker()

    events = turn_events(live_system, tenant_key.key, accepted, timeout=120)
    assert events[-1]["type"] == "assistant.final"
    started = of_type(events, "assistant.started")
    assert started[0]["data"]["restart"] is False and started[-1]["data"]["restart"] is True, [
        (e["id"], e["type"], e["data"]) for e in events if e["type"] != "assistant.delta"
    ]
    last = of_type(events, "tool.result")[-1]
    assert last["data"]["status"] == "success" and last["data"]["result"]["stdout"] == "started\ndone\n"
    assert last["data"]["request_id"] != str(first_run.pk)
