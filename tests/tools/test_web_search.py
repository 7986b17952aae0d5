"""web_search against a stub SearxNG server over real HTTP; unset URL means no web search at all."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.tools.conftest import tool_settings
from tools.builtin.web_search import web_search
from tools.registry import ToolContext, ToolError, ToolTimeout, get_tool
from tools.search import search_port


@pytest.fixture
def searx(web_stub) -> Iterator[str]:
    search_port.cache_clear()
    with tool_settings(search_url=web_stub.url):
        yield web_stub.url
    search_port.cache_clear()


def ctx(timeout: float = 10) -> ToolContext:
    return ToolContext(
        tenant_id="t", persona_id=None, session_id="s", request_id="r", timeout=timeout, config={}
    )


def test_returns_hits(searx: str) -> None:
    doc = web_search({"query": "otters", "max_results": 3}, ctx())
    assert doc["query"] == "otters" and len(doc["results"]) == 3
    assert doc["results"][0] == {
        "title": "Result 0 for otters",
        "url": "https://example.org/0",
        "snippet": "About otters (0)",
    }


def test_retries_a_busy_service_honouring_retry_after(searx: str) -> None:
    doc = web_search({"query": f"[[fail_first=2]] {uuid.uuid4().hex}"}, ctx())
    assert len(doc["results"]) == 5


def test_gives_up_after_bounded_retries(searx: str) -> None:
    with pytest.raises(ToolError) as info:
        web_search({"query": "[[status=503]]"}, ctx())
    assert info.value.code == "search_failed" and "503" in info.value.message


def test_a_client_error_is_not_retried(searx: str, web_stub) -> None:
    import httpx

    marker = uuid.uuid4().hex
    with pytest.raises(ToolError):
        web_search({"query": f"[[status=400]] {marker}"}, ctx())
    seen = httpx.get(f"{web_stub.url}/_requests").json()
    assert sum(1 for r in seen if marker in r["query"].get("q", [""])[0]) == 1


def test_an_answer_that_is_not_json_is_an_error(searx: str) -> None:
    with pytest.raises(ToolError) as info:
        web_search({"query": "[[not_json]]"}, ctx())
    assert "not JSON" in info.value.message


def test_a_slow_service_times_out(searx: str) -> None:
    with pytest.raises(ToolTimeout):
        web_search({"query": "[[slow=5]]"}, ctx(timeout=1))


def test_without_a_url_web_search_is_unavailable() -> None:
    search_port.cache_clear()
    try:
        with tool_settings(search_url=""):
            tool = get_tool("web_search")
            assert tool is not None and tool.unavailable() == "SOMA_SEARCH_URL is not set"
            with pytest.raises(ToolError) as info:
                web_search({"query": "x"}, ctx())
            assert info.value.code == "tool_unavailable"
    finally:
        search_port.cache_clear()
