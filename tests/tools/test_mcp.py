"""MCP servers as tool sources, against a real MCP server (the SDK's server side) over HTTP.

Listing, calling, tool errors, timeouts, a server that is down, the allowlist, names that cannot
be offered, ``list_changed``, the network guard and tenant isolation; no worker involved (the
end-to-end turn is in test_mcp_flow.py).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from somaagent.models import Tenant
from tests.live import StubServer, free_port, wait_until
from tests.tools.conftest import tool_settings
from tests.tools.mcp_support import add_server
from tools.breaker import breaker_open_for
from tools.mcp.catalog import server_breaker
from tools.mcp.client import call_tool
from tools.mcp.offer import mcp_tools_for, tenant_servers
from tools.mcp.watch import listening
from tools.models import ToolSetting
from tools.registry import ToolContext, ToolError, ToolTimeout, args_error
from tools.selectors import offered_specs, tools_for

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def mcp_stub() -> Iterator[StubServer]:
    server = StubServer("tests.stubs.mcp_server")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mcp_sse_stub() -> Iterator[StubServer]:
    server = StubServer("tests.stubs.mcp_server", "--transport", "sse")
    yield server
    server.stop()


def tenant() -> Tenant:
    return Tenant.objects.create(name=f"mcp-{time.monotonic_ns()}")


def ctx(t: Tenant, timeout: float = 5.0) -> ToolContext:
    return ToolContext(
        tenant_id=str(t.pk), persona_id=None, session_id="s", request_id="r", timeout=timeout, config={}
    )


def by_name(t: Tenant) -> dict:
    return {tool.name: tool for tool in mcp_tools_for(tenant_id=t.pk)}


def test_tools_are_listed_namespaced_and_offered_next_to_the_builtins(mcp_stub) -> None:
    t = tenant()
    add_server(t, name="stub", url=f"{mcp_stub.url}/mcp")
    tools = by_name(t)
    assert {"stub__add", "stub__echo", "stub__fail", "stub__slow", "stub__grow"} <= set(tools)
    assert "stub__weird.name" not in tools  # not a valid function name: never offered
    add = tools["stub__add"]
    assert add.description.startswith("[stub] Add two integers")
    assert add.parameters["required"] == ["a", "b"]
    names = [s["function"]["name"] for s in offered_specs(tools_for(tenant_id=t.pk, persona_id=None))]
    assert "stub__add" in names and "current_time" in names


def test_a_call_returns_the_result_and_bad_arguments_are_caught_before(mcp_stub) -> None:
    t = tenant()
    add_server(t, name="calc", url=f"{mcp_stub.url}/mcp")
    add = by_name(t)["calc__add"]
    assert add.run({"a": 2, "b": 40}, ctx(t)) == {
        "server": "calc",
        "tool": "add",
        "text": "42",
        "structured": {"result": 42},
    }
    assert args_error(add, {"a": "two"}) is not None


def test_a_huge_answer_is_kept_only_up_to_the_limit(mcp_stub) -> None:
    t = tenant()
    add_server(t, name="huge", url=f"{mcp_stub.url}/mcp")
    doc = by_name(t)["huge__big"].run({"size": 300_000}, ctx(t, timeout=20))
    assert len(doc["text"]) == 200_000 and doc["text_truncated"] == 300_000
    assert "structured" not in doc and doc["structured_dropped"]


def test_a_tool_error_is_a_tool_error_not_a_server_failure(mcp_stub) -> None:
    t = tenant()
    spec_server = add_server(t, name="e", url=f"{mcp_stub.url}/mcp")
    with pytest.raises(ToolError) as info:
        by_name(t)["e__fail"].run({"message": "boom"}, ctx(t))
    assert info.value.code == "mcp_tool_error" and info.value.status == "error"
    assert "e/fail failed" in info.value.message
    (spec,) = tenant_servers(tenant_id=t.pk)
    assert spec.id == spec_server.pk
    assert breaker_open_for(tool=server_breaker(spec), tenant_id=t.pk) is None


def test_a_slow_tool_times_out(mcp_stub) -> None:
    t = tenant()
    add_server(t, name="slowpoke", url=f"{mcp_stub.url}/mcp")
    started = time.monotonic()
    with pytest.raises(ToolTimeout) as info:
        by_name(t)["slowpoke__slow"].run({"seconds": 10}, ctx(t, timeout=1.0))
    assert time.monotonic() - started < 5
    assert info.value.status == "timeout" and "slowpoke" in info.value.message


def test_only_allowlisted_tools_are_offered(mcp_stub) -> None:
    t = tenant()
    add_server(t, name="few", url=f"{mcp_stub.url}/mcp", allowed_tools=["add", "echo"])
    add_server(t, name="none", url=f"{mcp_stub.url}/mcp", allowed_tools=[])
    assert sorted(by_name(t)) == ["few__add", "few__echo"]


def test_the_legacy_sse_transport_works_too(mcp_sse_stub) -> None:
    t = tenant()
    add_server(t, name="old", transport="sse", url=f"{mcp_sse_stub.url}/sse")
    tools = by_name(t)
    assert tools["old__echo"].run({"text": "hi"}, ctx(t))["text"] == "hi"


def test_a_tool_setting_switches_an_mcp_tool_off(mcp_stub) -> None:
    t = tenant()
    add_server(t, name="tuned", url=f"{mcp_stub.url}/mcp", allowed_tools=["add", "echo"])
    ToolSetting.objects.create(tenant=t, tool="tuned__echo", enabled=False, timeout_seconds=2)
    effective = tools_for(tenant_id=t.pk, persona_id=None)
    assert effective["tuned__add"].usable and effective["tuned__add"].timeout == 5.0
    assert not effective["tuned__echo"].usable and effective["tuned__echo"].timeout == 2
    assert "tuned__echo" not in [s["function"]["name"] for s in offered_specs(effective)]


def test_a_server_that_is_down_offers_its_last_tools_which_fail_clearly_and_trip_the_breaker() -> None:
    server = StubServer("tests.stubs.mcp_server")
    t = tenant()
    try:
        add_server(t, name="flaky", url=f"{server.url}/mcp")
        echo = by_name(t)["flaky__echo"]
        assert echo.run({"text": "up"}, ctx(t))["text"] == "up"
    finally:
        server.stop()
    (spec,) = tenant_servers(tenant_id=t.pk)
    for _ in range(10):
        with pytest.raises(ToolError) as info:
            by_name(t)["flaky__echo"].run({"text": "down"}, ctx(t))
        if info.value.code == "circuit_open":
            break
        assert info.value.code == "mcp_unavailable"
        assert "flaky" in info.value.message and "unavailable" in info.value.message
    assert info.value.code == "circuit_open"
    assert breaker_open_for(tool=server_breaker(spec), tenant_id=t.pk) is not None


def test_a_server_that_never_answered_offers_nothing_and_the_turn_goes_on() -> None:
    t = tenant()
    add_server(t, name="ghost", url=f"http://127.0.0.1:{free_port()}/mcp")
    started = time.monotonic()
    assert by_name(t) == {}
    assert "current_time" in tools_for(tenant_id=t.pk, persona_id=None)
    assert time.monotonic() - started < 10


def test_silent_servers_are_listed_side_by_side_and_the_wait_is_bounded() -> None:
    silent = [socket.socket(), socket.socket()]
    try:
        for sock in silent:
            sock.bind(("127.0.0.1", 0))
            sock.listen(8)  # connections complete, nothing ever answers
        t = tenant()
        for n, sock in enumerate(silent):
            add_server(t, name=f"mute{n}", url=f"http://127.0.0.1:{sock.getsockname()[1]}/mcp")
        with tool_settings(mcp_list_timeout_seconds=2.0):
            started = time.monotonic()
            assert by_name(t) == {}
            elapsed = time.monotonic() - started
        assert 1.5 < elapsed < 3.8, elapsed  # one timeout, not two in a row
        started = time.monotonic()
        assert by_name(t) == {}  # remembered as down for a while: no new wait
        assert time.monotonic() - started < 1.0
    finally:
        for sock in silent:
            sock.close()


def test_list_changed_refreshes_the_cached_list(mcp_stub) -> None:
    t = tenant()
    add_server(t, name="growing", url=f"{mcp_stub.url}/mcp")
    new = f"grown_{time.monotonic_ns()}"
    assert f"growing__{new}" not in by_name(t)
    (spec,) = tenant_servers(tenant_id=t.pk)
    wait_until(lambda: listening(spec), timeout=15, what="this process's listener to subscribe")
    by_name(t)["growing__grow"].run({"name": new}, ctx(t))
    grown = wait_until(lambda: by_name(t).get(f"growing__{new}"), timeout=10, what="the new tool")
    assert grown.run({}, ctx(t))["text"] == f"I am {new}"


def test_private_addresses_are_refused_unless_the_entry_allows_them(mcp_stub) -> None:
    t = tenant()
    add_server(t, name="guarded", url=f"http://localhost:{mcp_stub.port}/mcp", allow_private=False)
    assert by_name(t) == {}  # listing refused: nothing offered
    (spec,) = tenant_servers(tenant_id=t.pk)
    with pytest.raises(ToolError) as info:
        call_tool(spec, tool="echo", args={"text": "x"}, timeout=5)
    assert info.value.code == "mcp_unavailable"
    assert "resolves to 127.0.0.1" in info.value.message and "refused" in info.value.message
    allowed = tenant()
    add_server(allowed, name="guarded", url=f"{mcp_stub.url}/mcp", allow_private=True)
    assert by_name(allowed)["guarded__echo"].run({"text": "ok"}, ctx(allowed))["text"] == "ok"


def test_tenants_see_and_call_only_their_own_servers(mcp_stub) -> None:
    mine, theirs = tenant(), tenant()
    add_server(mine, name="private", url=f"{mcp_stub.url}/mcp")
    assert "private__echo" in by_name(mine)
    assert by_name(theirs) == {}
    assert "private__echo" not in tools_for(tenant_id=theirs.pk, persona_id=None)
    tool = by_name(mine)["private__echo"]
    with pytest.raises(ToolError) as info:
        tool.run({"text": "x"}, ctx(theirs))
    assert info.value.code == "unknown_tool"
