"""MCP tools end to end: stub model → conversation worker → tools worker → real MCP server → model.

The stream carries ``tool.start``/``tool.result`` as for any tool; a server that goes down during
a turn makes the call a tool error, the turn still ends with ``assistant.final``, and repeated
failures open the circuit breaker (SOMA_TOOL_BREAKER_FAILURES=2 in the live system).
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from django.db import connection

from somaagent.models import Tenant
from tests.conversations.support import send
from tests.live import StubServer
from tests.tools.helpers import call, model_requests, of_type, turn_events
from tests.tools.mcp_support import add_server
from tools.models import ToolRun

pytestmark = pytest.mark.integration


def marker() -> str:
    return f"m{uuid.uuid4().hex[:12]}"


def _stop_when_called(server: StubServer, tenant: Tenant, tool: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not ToolRun.objects.filter(tenant=tenant, tool=tool).exists():
        time.sleep(0.05)
    connection.close()  # this thread's own
    time.sleep(0.3)
    server.stop()


@pytest.fixture
def mcp_stub():
    server = StubServer("tests.stubs.mcp_server")
    yield server
    server.stop()


def test_the_model_calls_an_mcp_tool_and_the_stream_carries_it(live_system, tenant_key, llm_stub, mcp_stub):
    add_server(tenant_key.tenant, name="calc", url=f"{mcp_stub.url}/mcp", allowed_tools=["add", "echo"])
    m = marker()
    accepted = send(
        live_system, tenant_key.key, f"sum? {m} {call('calc__add', {'a': 19, 'b': 23})} [[echo_tools]]"
    )
    events = turn_events(live_system, tenant_key.key, accepted)
    (start,) = of_type(events, "tool.start")
    (result,) = of_type(events, "tool.result")
    assert start["data"]["tool_name"] == "calc__add" and start["data"]["args"] == {"a": 19, "b": 23}
    assert result["data"]["status"] == "success", result
    assert result["data"]["result"] == {
        "server": "calc",
        "tool": "add",
        "text": "42",
        "structured": {"result": 42},
    }
    assert events[-1]["type"] == "assistant.final"
    first, second = model_requests(llm_stub.url, m)
    offered = {t["function"]["name"] for t in first["tools"]}
    assert {"calc__add", "calc__echo", "current_time"} <= offered and "calc__fail" not in offered
    assert '"text": "42"' in second["messages"][-1]["content"]


def test_a_server_that_dies_mid_turn_is_a_tool_error_and_the_breaker_opens(live_system, tenant_key):
    server = StubServer("tests.stubs.mcp_server")
    add_server(tenant_key.tenant, name="dying", url=f"{server.url}/mcp", timeout_seconds=6)
    accepted = send(live_system, tenant_key.key, f"{marker()} {call('dying__slow', {'seconds': 4})}")
    # The server dies once the tool call is under way (listed, offered and called), whenever that is.
    killer = threading.Thread(target=_stop_when_called, args=(server, tenant_key.tenant, "dying__slow"))
    killer.start()
    try:
        events = turn_events(live_system, tenant_key.key, accepted)
    finally:
        killer.join()
    (result,) = of_type(events, "tool.result")
    assert result["data"]["status"] in ("error", "timeout"), result
    assert result["data"]["result"]["error"] in ("mcp_unavailable", "timeout")
    assert "dying" in result["data"]["result"]["message"]
    assert events[-1]["type"] == "assistant.final"

    # The server stays down: its last known tools are still offered, and fail clearly.
    second = turn_events(
        live_system, tenant_key.key, send(live_system, tenant_key.key, call("dying__echo", {"text": "x"}))
    )
    (result,) = of_type(second, "tool.result")
    assert result["data"]["status"] == "error" and result["data"]["result"]["error"] == "mcp_unavailable"
    assert second[-1]["type"] == "assistant.final"

    # Two failures in a row (SOMA_TOOL_BREAKER_FAILURES=2): the next call is blocked at once.
    started = time.monotonic()
    third = turn_events(
        live_system, tenant_key.key, send(live_system, tenant_key.key, call("dying__echo", {"text": "y"}))
    )
    (result,) = of_type(third, "tool.result")
    assert result["data"]["result"]["error"] == "circuit_open", result
    assert third[-1]["type"] == "assistant.final" and time.monotonic() - started < 30
    assert ToolRun.objects.filter(tenant=tenant_key.tenant, tool="dying__echo").count() == 2


def test_another_tenants_mcp_tool_is_unknown(live_system, tenant_key, other_tenant_key, llm_stub, mcp_stub):
    add_server(other_tenant_key.tenant, name="theirs", url=f"{mcp_stub.url}/mcp")
    m = marker()
    events = turn_events(
        live_system,
        tenant_key.key,
        send(live_system, tenant_key.key, f"{m} {call('theirs__echo', {'text': 'x'})} [[echo_tools]]"),
    )
    (result,) = of_type(events, "tool.result")
    assert result["data"]["status"] == "error" and result["data"]["result"]["error"] == "unknown_tool"
    assert "theirs__" not in result["data"]["result"]["message"].split("Tools:")[1]
    first = model_requests(llm_stub.url, m)[0]
    assert not any(t["function"]["name"].startswith("theirs__") for t in first["tools"])
