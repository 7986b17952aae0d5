"""Many conversations at once on one worker: the Procfile's worker command and its thread pool.

A turn waiting on the model costs a thread, not a process, and holds no
database connection while it waits: the turns overlap (the stub model sees
them all streaming at once), each ends exactly once with its whole reply, and
a tool call that runs for seconds does not hold up another session's reply.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from conversations.models import Turn
from tests.conftest import make_tenant_key
from tests.conversations.support import own_system, send, stub_env
from tests.live import LiveSystem, read_stream, stub_llm
from tests.tools.helpers import call
from tools.models import ToolRun

pytestmark = pytest.mark.integration

TURNS = 40  # the prefork worker ran 2 at a time
TOKENS = 30
REPLY = "".join(f"t{i} " for i in range(TOKENS))


def _in_parallel(work: list[Any]) -> list[Any]:
    results: list[Any] = [None] * len(work)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = work[i]()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not errors, errors[:3]
    return results


def _send_and_follow(system: LiveSystem, key: str, message: str) -> list[dict[str, Any]]:
    accepted = send(system, key, message)
    return read_stream(system, key, accepted["session_id"], timeout=120)


def test_many_turns_stream_at_once_and_each_ends_exactly_once(live_db: None) -> None:
    # A worker whose pool has 4 connections and gives up on one after 3 s: if a turn held
    # its connection while the model streams (15 s), most of these turns would fail. The stream
    # is long so that all 40 are open together even when accepting them takes seconds (CI load).
    pool = {"SOMA_DB_POOL_MAX_SIZE": "4", "SOMA_DB_POOL_TIMEOUT_SECONDS": "3"}
    with stub_llm() as stub, own_system(stub_env(stub.url), worker_env=pool) as system:
        key = make_tenant_key().key
        httpx.delete(f"{stub.url}/_streams")
        message = f"count [[tokens={TOKENS}]] [[delay=0.5]]"
        streams = _in_parallel([lambda: _send_and_follow(system, key, message) for _ in range(TURNS)])
        open_at_once = httpx.get(f"{stub.url}/_streams").json()["max_open"]

    assert open_at_once == TURNS, f"only {open_at_once} of {TURNS} model streams were open at once"
    for events in streams:
        ends = [e for e in events if e["type"] not in ("user.message", "assistant.delta")]
        assert [e["type"] for e in ends] == ["assistant.started", "assistant.final"], ends
        deltas = "".join(e["data"]["text"] for e in events if e["type"] == "assistant.delta")
        assert deltas == ends[-1]["data"]["message"] == REPLY
    sessions = [events[0]["session_id"] for events in streams]
    assert set(Turn.objects.filter(session_id__in=sessions).values_list("status", flat=True)) == {"completed"}
    assert Turn.objects.filter(session_id__in=sessions, lease_owner="").count() == TURNS


def test_a_slow_tool_call_does_not_hold_up_another_sessions_reply(live_db: None) -> None:
    code = "import time\ntime.sleep(8)\nprint('slept')"  # long: under CI load the quick reply takes seconds
    with stub_llm() as stub, own_system(stub_env(stub.url)) as system:
        key = make_tenant_key().key
        slow = send(system, key, f"run it {call('python', {'code': code})} [[echo_tools]]")
        read_stream(system, key, slow["session_id"], until=lambda e: e["type"] == "tool.start")
        quick = send(system, key, "[[reply=hello there]]")
        quick_events = read_stream(system, key, quick["session_id"])
        # The quick reply is complete while the slow session's tool still runs.
        assert quick_events[-1]["type"] == "assistant.final"
        (run,) = ToolRun.objects.filter(turn_id=slow["turn_id"])
        assert run.status in ToolRun.OPEN_STATUSES, run.status
        slow_events = read_stream(system, key, slow["session_id"], timeout=60)
    result = next(e for e in slow_events if e["type"] == "tool.result")
    assert result["data"]["status"] == "success" and "slept" in str(result["data"]["result"])
    assert slow_events[-1]["type"] == "assistant.final"


def test_a_turn_past_its_time_limit_ends_with_an_error_and_frees_its_thread(live_db: None) -> None:
    """Celery's time limits do not apply to the thread pool: the worker keeps the turn's own."""
    with (
        stub_llm() as stub,
        own_system(stub_env(stub.url), worker_env={"SOMA_TURN_TIME_LIMIT_SECONDS": "2"}) as system,
    ):
        key = make_tenant_key().key
        slow = send(system, key, "[[tokens=100]] [[delay=0.1]]")
        events = read_stream(system, key, slow["session_id"], timeout=30)
        after = send(system, key, "[[reply=still here]]")
        later = read_stream(system, key, after["session_id"], timeout=30)
    error = events[-1]
    assert error["type"] == "assistant.error" and error["data"]["code"] == "turn_timeout", error
    assert error["data"]["retryable"] is True and error["data"]["partial"].startswith("t0 t1 ")
    assert Turn.objects.get(pk=slow["turn_id"]).status == Turn.Status.FAILED
    assert later[-1]["type"] == "assistant.final" and later[-1]["data"]["message"] == "still here"
