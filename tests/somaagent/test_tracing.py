"""OpenTelemetry: one trace links the gateway request, the turn's task and the model call."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from somaagent.tracing import process_role, tracing_requested
from tests.live import LiveSystem, StubServer, read_stream, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def collector() -> Iterator[StubServer]:
    server = StubServer("tests.stubs.otlp_collector")
    yield server
    server.stop()


def _spans(collector: StubServer) -> list[dict[str, Any]]:
    return httpx.get(f"{collector.url}/_spans", timeout=5).json()


def _linked_trace(spans: list[dict[str, Any]], llm_url: str) -> dict[str, Any] | None:
    """The gateway span, the task span and the LLM call span of one trace, if all arrived."""
    gateways = [
        s
        for s in spans
        if s["service"] == "somaagent-web" and s["attributes"].get("http.route") == "v1/session/message"
    ]
    for gateway in gateways:
        trace = [s for s in spans if s["trace_id"] == gateway["trace_id"]]
        runs = [s for s in trace if s["name"] == "run/conversation.run_turn"]
        calls = [
            s
            for s in trace
            if s["service"] == "somaagent-worker"
            and s["scope"].endswith("httpx")
            and llm_url in str(s["attributes"].get("url.full") or s["attributes"].get("http.url"))
        ]
        if runs and calls:
            return {"gateway": gateway, "trace": trace, "run": runs[0], "call": calls[0]}
    return None


def test_one_trace_links_gateway_task_and_model_call(live_db, llm_stub, collector, tenant_key):
    system = LiveSystem(
        env={
            # queues of its own: only this system's (traced) worker takes the turn
            "SOMA_REDIS_PREFIX": f"o{uuid.uuid4().hex[:8]}:",
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "SOMA_LLM_BASE_URL": f"{llm_stub.url}/v1",
            "SOMA_LLM_MODEL": "stub-model",
        }
    )
    try:
        system.start(beat=False)
        with system.client(tenant_key.key) as c:
            accepted = c.post("/v1/session/message", json={"message": "trace me [[tokens=3]]"}).json()
        events = read_stream(system, tenant_key.key, accepted["session_id"])
        assert events[-1]["type"] == "assistant.final"
        found = wait_until(
            lambda: _linked_trace(_spans(collector), llm_stub.url),
            timeout=30,
            interval=0.3,
            what="linked spans at the collector",
        )
    finally:
        system.stop()
    by_id = {s["span_id"]: s for s in found["trace"]}

    def ancestors(span: dict[str, Any]) -> list[str]:
        chain = []
        while span["parent_id"] and span["parent_id"] in by_id:
            span = by_id[span["parent_id"]]
            chain.append(span["span_id"])
        return chain

    # the model call happened inside the task run, and the task run descends from the request
    assert found["run"]["span_id"] in ancestors(found["call"])
    assert found["gateway"]["span_id"] in ancestors(found["run"])


def test_tracing_is_off_without_an_endpoint(monkeypatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert not tracing_requested()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert tracing_requested()


def test_process_role_from_the_command_line(monkeypatch) -> None:
    monkeypatch.setattr("sys.argv", ["/venv/bin/celery", "-A", "somaagent", "worker", "-Q", "x"])
    assert process_role() == "worker"
    monkeypatch.setattr("sys.argv", ["/venv/bin/uvicorn", "somaagent.asgi:application"])
    assert process_role() == "web"
