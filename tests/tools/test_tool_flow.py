"""Tool calls end to end: stub model → conversation worker → tools worker (sandbox) → model → final."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conversations.support import send
from tests.live import read_stream, wait_until
from tests.tools.helpers import call, model_requests, of_type, turn_events
from tools.models import ToolRun, ToolSetting

pytestmark = pytest.mark.integration


def marker() -> str:
    return f"m{uuid.uuid4().hex[:12]}"


def test_a_single_call_runs_and_its_result_goes_back_to_the_model(live_system, tenant_key, llm_stub):
    m = marker()
    accepted = send(live_system, tenant_key.key, f"time? {m} [[tool=current_time:{{}}]] [[echo_tools]]")
    events = turn_events(live_system, tenant_key.key, accepted)
    types = [e["type"] for e in events]
    assert types[:3] == ["user.message", "assistant.started", "tool.start"]
    assert types[-1] == "assistant.final"
    (start,) = of_type(events, "tool.start")
    (result,) = of_type(events, "tool.result")
    assert (
        start["role"] == "tool"
        and start["data"]["tool_name"] == "current_time"
        and start["data"]["args"] == {}
    )
    assert set(result["data"]) == {"request_id", "tool_name", "status", "result", "duration_ms"}
    assert result["data"]["request_id"] == start["data"]["request_id"]
    assert result["data"]["status"] == "success" and isinstance(result["data"]["duration_ms"], int)
    iso = result["data"]["result"]["iso"]
    final = events[-1]["data"]
    assert iso in final["message"]
    deltas = "".join(e["data"]["text"] for e in of_type(events, "assistant.delta"))
    assert deltas == final["message"]

    run = ToolRun.objects.get(pk=start["data"]["request_id"])
    assert run.status == "success" and str(run.session_id) == accepted["session_id"]
    assert run.tenant_id == tenant_key.tenant.pk and run.result["iso"] == iso and run.duration_ms is not None
    assert run.worker.startswith("w")

    first, second = model_requests(llm_stub.url, m)
    offered = sorted(t["function"]["name"] for t in first["tools"])
    assert offered == ["current_time", "document_search", "memory_recall", "python", "web_search"]
    assistant, tool_message = second["messages"][-2:]
    assert (
        assistant["role"] == "assistant" and assistant["tool_calls"][0]["function"]["name"] == "current_time"
    )
    assert tool_message == {
        "role": "tool",
        "tool_call_id": assistant["tool_calls"][0]["id"],
        "content": tool_message["content"],
    }
    assert iso in tool_message["content"] and '"status": "success"' in tool_message["content"]


def test_parallel_calls_all_run_and_each_result_is_matched(live_system, tenant_key, llm_stub):
    m = marker()
    message = f"{m} {call('python', {'code': 'print(6 * 7)'})} [[tool=current_time:{{}}]] [[echo_tools]]"
    events = turn_events(live_system, tenant_key.key, send(live_system, tenant_key.key, message))
    starts, results = of_type(events, "tool.start"), of_type(events, "tool.result")
    # the stub lists [[tool=…]] calls before [[tool_b64=…]] ones
    assert [s["data"]["tool_name"] for s in starts] == ["current_time", "python"]
    assert {r["data"]["request_id"] for r in results} == {s["data"]["request_id"] for s in starts}
    assert all(r["data"]["status"] == "success" for r in results)
    py = next(r for r in results if r["data"]["tool_name"] == "python")["data"]["result"]
    assert py["stdout"] == "42\n" and py["exit_status"] == 0 and py["isolation"] == "bwrap"
    assert events[-1]["type"] == "assistant.final"
    second = model_requests(llm_stub.url, m)[1]
    calls = second["messages"][-3]["tool_calls"]
    tool_messages = second["messages"][-2:]
    assert [t["tool_call_id"] for t in tool_messages] == [c["id"] for c in calls]
    assert "42" in tool_messages[1]["content"] and "iso" in tool_messages[0]["content"]


def test_malformed_json_arguments_are_an_error_result_and_nothing_runs(live_system, tenant_key):
    events = turn_events(
        live_system, tenant_key.key, send(live_system, tenant_key.key, "[[tool=python:{bad]]")
    )
    (start,) = of_type(events, "tool.start")
    (result,) = of_type(events, "tool.result")
    assert start["data"]["args"] == {"_raw": "{bad"}
    assert result["data"]["status"] == "error" and result["data"]["result"]["error"] == "invalid_arguments"
    assert events[-1]["type"] == "assistant.final"
    run = ToolRun.objects.get(pk=start["data"]["request_id"])
    assert run.status == "error" and run.started_at is None and run.worker == ""


def test_an_unknown_tool_is_an_error_result(live_system, tenant_key):
    events = turn_events(
        live_system, tenant_key.key, send(live_system, tenant_key.key, "[[tool=teleport:{}]]")
    )
    (result,) = of_type(events, "tool.result")
    assert result["data"]["status"] == "error" and result["data"]["result"]["error"] == "unknown_tool"
    assert "python" in result["data"]["result"]["message"]
    assert events[-1]["type"] == "assistant.final"


def test_a_tool_that_is_not_enabled_is_not_offered_and_is_blocked(live_system, tenant_key, llm_stub):
    ToolSetting.objects.create(tenant=tenant_key.tenant, tool="python", enabled=False)
    m = marker()
    message = f"{m} {call('python', {'code': 'print(1)'})}"
    events = turn_events(live_system, tenant_key.key, send(live_system, tenant_key.key, message))
    (result,) = of_type(events, "tool.result")
    assert result["data"]["status"] == "blocked" and result["data"]["result"]["error"] == "tool_not_enabled"
    assert events[-1]["type"] == "assistant.final"
    first = model_requests(llm_stub.url, m)[0]
    assert "python" not in [t["function"]["name"] for t in first["tools"]]


def test_calls_over_the_per_turn_limit_are_blocked_and_the_model_must_answer(
    live_system, tenant_key, llm_stub
):
    m = marker()
    events = turn_events(
        live_system,
        tenant_key.key,
        send(live_system, tenant_key.key, f"{m} " + "[[tool=current_time:{}]] " * 5),
    )
    statuses = [r["data"]["status"] for r in of_type(events, "tool.result")]
    assert sorted(statuses) == ["blocked", "blocked", "success", "success", "success"]
    blocked = [r for r in of_type(events, "tool.result") if r["data"]["status"] == "blocked"]
    assert all(r["data"]["result"]["error"] == "tool_call_limit" for r in blocked)
    assert events[-1]["type"] == "assistant.final"
    assert model_requests(llm_stub.url, m)[-1]["tool_choice"] == "none"


def test_a_model_that_keeps_calling_tools_past_the_limit_ends_the_turn_with_an_error(live_system, tenant_key):
    message = "[[tool=current_time:{}]] [[tool_rounds=10]] [[ignore_tool_choice]]"
    events = turn_events(live_system, tenant_key.key, send(live_system, tenant_key.key, message))
    assert len(of_type(events, "tool.result")) == 3
    assert events[-1]["type"] == "assistant.error"
    assert events[-1]["data"]["code"] == "tool_call_limit" and events[-1]["data"]["retryable"] is False


def test_web_search_uses_the_search_service(live_system, tenant_key):
    message = f"{call('web_search', {'query': 'sea otters', 'max_results': 2})} [[echo_tools]]"
    events = turn_events(live_system, tenant_key.key, send(live_system, tenant_key.key, message))
    (result,) = of_type(events, "tool.result")
    assert result["data"]["status"] == "success"
    assert [h["title"] for h in result["data"]["result"]["results"]] == [
        "Result 0 for sea otters",
        "Result 1 for sea otters",
    ]
    assert "Result 1 for sea otters" in events[-1]["data"]["message"]


def test_http_fetch_follows_the_tenants_allowlist(live_system, tenant_key, web_stub):
    ToolSetting.objects.create(
        tenant=tenant_key.tenant,
        tool="http_fetch",
        config={"allowed_hosts": ["127.0.0.1"], "allow_private": True},
    )
    message = call("http_fetch", {"url": f"{web_stub.url}/page"}) + call(
        "http_fetch", {"url": f"http://localhost:{web_stub.port}/page"}
    )
    events = turn_events(live_system, tenant_key.key, send(live_system, tenant_key.key, message))
    ok, refused = sorted(of_type(events, "tool.result"), key=lambda r: r["data"]["status"], reverse=True)
    assert ok["data"]["status"] == "success" and "hello from the stub page" in ok["data"]["result"]["text"]
    assert refused["data"]["status"] == "error" and refused["data"]["result"]["error"] == "host_not_allowed"


def test_a_failing_tool_trips_its_circuit_breaker(live_system, tenant_key):
    message = call("web_search", {"query": "[[status=500]]"}) + " [[tool_rounds=3]]"
    events = turn_events(live_system, tenant_key.key, send(live_system, tenant_key.key, message))
    results = of_type(events, "tool.result")
    assert [r["data"]["status"] for r in results] == ["error", "error", "blocked"]
    assert results[2]["data"]["result"]["error"] == "circuit_open"
    assert events[-1]["type"] == "assistant.final"


def test_code_running_too_long_is_a_timeout_result(live_system, tenant_key):
    code = "import time\nprint('begin', flush=True)\ntime.sleep(600)"
    events = turn_events(
        live_system, tenant_key.key, send(live_system, tenant_key.key, call("python", {"code": code}))
    )
    (result,) = of_type(events, "tool.result")
    assert result["data"]["status"] == "timeout"
    assert result["data"]["result"]["stdout"] == "begin\n" and result["data"]["result"]["timed_out"] is True
    assert events[-1]["type"] == "assistant.final"


def test_the_code_cannot_see_the_workers_environment_or_files(live_system, tenant_key):
    code = (
        "import os\n"
        "print(sorted(os.environ))\n"
        "for p in ['/proc/1/environ', 'manage.py', '../manage.py']:\n"
        "    try:\n"
        "        print('READ', p, open(p).read(20))\n"
        "    except OSError:\n"
        "        print('no', p)\n"
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('127.0.0.1', 6379), timeout=2); print('CONNECTED')\n"
        "except OSError:\n"
        "    print('no network')\n"
    )
    events = turn_events(
        live_system, tenant_key.key, send(live_system, tenant_key.key, call("python", {"code": code}))
    )
    out = of_type(events, "tool.result")[0]["data"]["result"]["stdout"]
    assert "DATABASE" not in out and "SOMA" not in out and "REDIS" not in out and "DJANGO" not in out
    assert "READ manage.py" not in out and "READ ../manage.py" not in out and "CONNECTED" not in out
    assert "no network" in out


def test_cancelling_while_a_tool_runs_ends_the_turn_cancelled(live_system, tenant_key):
    code = "import time\ntime.sleep(600)"
    accepted = send(live_system, tenant_key.key, call("python", {"code": code}))
    sid = accepted["session_id"]
    first = read_stream(
        live_system, tenant_key.key, sid, until=lambda e: e["type"] == "tool.start", timeout=60
    )
    wait_until(
        lambda: ToolRun.objects.filter(session_id=sid, status="running").exists(),
        timeout=30,
        what="tool to run",
    )
    with live_system.client(tenant_key.key) as c:
        assert c.post(f"/v1/sessions/{sid}/cancel").status_code in (200, 202)
    rest = read_stream(live_system, tenant_key.key, sid, after=int(first[-1]["id"]), timeout=60)
    assert rest[-1]["type"] == "assistant.cancelled"
    assert not of_type(rest, "assistant.final") and not of_type(rest, "assistant.error")


def test_readyz_reports_the_sandbox_level_and_the_tools(live_system):
    doc = httpx.get(f"{live_system.url}/readyz", timeout=30).json()
    sandbox = doc["checks"]["sandbox"]
    assert sandbox["ok"] is True and sandbox["isolation"] == "bwrap" and sandbox["required"] is False
    assert "bubblewrap" in sandbox["detail"]
    assert "web_search" in doc["checks"]["tools"]["available"]
