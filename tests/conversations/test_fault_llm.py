"""The model fails: HTTP errors, rate limits, timeouts, broken streams.

Each failed turn ends with exactly one ``assistant.error`` whose code and
``retryable`` flag say what happened; no turn is left running and the stream
does not hang. A call that fails before any text is tried again (bounded,
jittered, honouring ``Retry-After``); once text has streamed it is not.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import httpx
import pytest

from conversations.models import Turn
from tests.conversations.support import assert_gap_free, own_system, persisted_types, send, stub_env
from tests.live import LiveSystem, StubServer, read_stream

pytestmark = pytest.mark.integration

RETRIES = 2  # SOMA_LLM_MAX_RETRIES default


def _requests_for(stub: StubServer, marker: str) -> list[dict[str, Any]]:
    with httpx.Client() as c:
        bodies = c.get(f"{stub.url}/_requests").json()
    return [b for b in bodies if marker in str(b["messages"][-1]["content"])]


def _run(system: LiveSystem, key: str, directives: str) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    marker = uuid.uuid4().hex
    accepted = send(system, key, f"{marker} {directives}")
    events = read_stream(system, key, accepted["session_id"], timeout=45)
    return marker, accepted, events


def _assert_one_error(
    accepted: dict[str, Any], events: list[dict[str, Any]], *, code: str, retryable: bool
) -> dict[str, Any]:
    error = events[-1]
    assert error["type"] == "assistant.error", [e["type"] for e in events]
    assert error["data"]["code"] == code and error["data"]["retryable"] is retryable, error["data"]
    assert error["data"]["message"]
    assert_gap_free(events)
    types = persisted_types(accepted["session_id"])
    assert types.count("assistant.error") == 1 and "assistant.final" not in types, types
    turn = Turn.objects.get(pk=accepted["turn_id"])
    assert turn.status == Turn.Status.FAILED and turn.error_code == code
    assert turn.lease_owner == "" and turn.lease_expires_at is None
    return error


def test_http_500_is_retried_then_one_retryable_error(live_system, tenant_key, llm_stub):
    marker, accepted, events = _run(live_system, tenant_key.key, "[[status=500]]")
    _assert_one_error(accepted, events, code="llm_unavailable", retryable=True)
    assert [e["type"] for e in events] == ["user.message", "assistant.started", "assistant.error"]
    assert len(_requests_for(llm_stub, marker)) == 1 + RETRIES


def test_one_failed_call_is_retried_and_the_reply_arrives(live_system, tenant_key, llm_stub):
    marker, _accepted, events = _run(live_system, tenant_key.key, "[[fail_first=1]] [[tokens=4]]")
    assert [e["type"] for e in events if e["type"] != "assistant.delta"] == [
        "user.message",
        "assistant.started",
        "assistant.final",
    ]
    assert events[-1]["data"]["message"] == "t0 t1 t2 t3 "
    assert len(_requests_for(llm_stub, marker)) == 2


def test_429_waits_retry_after_then_one_error(live_system, tenant_key, llm_stub):
    marker, accepted, events = _run(live_system, tenant_key.key, "[[status=429]] [[retry_after=1]]")
    error = _assert_one_error(accepted, events, code="llm_rate_limited", retryable=True)
    assert error["data"]["retry_after"] == 1
    times = [r["_received_at"] for r in _requests_for(llm_stub, marker)]
    assert len(times) == 1 + RETRIES
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(times)), times


def test_429_with_a_long_retry_after_fails_at_once(live_system, tenant_key, llm_stub):
    marker, accepted, events = _run(live_system, tenant_key.key, "[[status=429]] [[retry_after=600]]")
    error = _assert_one_error(accepted, events, code="llm_rate_limited", retryable=True)
    assert error["data"]["retry_after"] == 600
    assert len(_requests_for(llm_stub, marker)) == 1


@pytest.mark.parametrize(("status", "code"), [(400, "llm_rejected"), (401, "llm_auth_failed")])
def test_client_errors_are_not_retried(live_system, tenant_key, llm_stub, status, code):
    marker, accepted, events = _run(live_system, tenant_key.key, f"[[status={status}]]")
    _assert_one_error(accepted, events, code=code, retryable=False)
    assert len(_requests_for(llm_stub, marker)) == 1


def test_stream_broken_after_some_text_keeps_the_partial(live_system, tenant_key, llm_stub):
    marker, accepted, events = _run(live_system, tenant_key.key, "[[tokens=10]] [[break_after=3]]")
    error = _assert_one_error(accepted, events, code="llm_stream_interrupted", retryable=True)
    streamed = "".join(e["data"]["text"] for e in events if e["type"] == "assistant.delta")
    # The stub sent three chunks before dropping the connection.
    assert streamed == error["data"]["partial"] and streamed and "t0 t1 t2 ".startswith(streamed)
    assert len(_requests_for(llm_stub, marker)) == 1, "a reply that already streamed text is not retried"


def test_stream_broken_before_any_text(live_system, tenant_key, llm_stub):
    marker, accepted, events = _run(live_system, tenant_key.key, "[[tokens=10]] [[break_after=0]]")
    error = _assert_one_error(accepted, events, code="llm_stream_interrupted", retryable=True)
    assert "partial" not in error["data"]
    assert not [e for e in events if e["type"] == "assistant.delta"]
    assert len(_requests_for(llm_stub, marker)) == 1 + RETRIES


def test_model_unreachable(live_db, tenant_key):
    from tests.live import free_port

    env = {
        "SOMA_LLM_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
        "SOMA_LLM_MODEL": "nowhere",
        "SOMA_LLM_MAX_RETRIES": "0",
    }
    with own_system(env, beat=False) as system:
        _, accepted, events = _run(system, tenant_key.key, "hello?")
        _assert_one_error(accepted, events, code="llm_unreachable", retryable=True)


def test_timeouts_before_the_first_token_and_between_tokens(llm_stub, live_db, tenant_key):
    env = stub_env(llm_stub.url, SOMA_LLM_READ_TIMEOUT="1", SOMA_LLM_MAX_RETRIES="1")
    with own_system(env, beat=False) as system:
        marker, accepted, events = _run(system, tenant_key.key, "[[first_delay=4]] [[tokens=3]]")
        error = _assert_one_error(accepted, events, code="llm_timeout", retryable=True)
        assert "partial" not in error["data"]
        assert len(_requests_for(llm_stub, marker)) == 2

        # The model goes silent after two tokens: the turn ends with the partial text, no retry.
        marker, accepted, events = _run(system, tenant_key.key, "[[tokens=5]] [[stall_after=2]]")
        error = _assert_one_error(accepted, events, code="llm_timeout", retryable=True)
        streamed = "".join(e["data"]["text"] for e in events if e["type"] == "assistant.delta")
        assert streamed == error["data"]["partial"] == "t0 t1 "
        assert len(_requests_for(llm_stub, marker)) == 1


def test_no_model_configured(live_db, tenant_key):
    from somaagent.models import ModelProfile

    assert not ModelProfile.objects.filter(role="dialogue").exists()
    with own_system({}, beat=False) as system:
        assert "SOMA_LLM_BASE_URL" not in system.env
        _, accepted, events = _run(system, tenant_key.key, "is anyone there?")
        error = _assert_one_error(accepted, events, code="no_model_configured", retryable=False)
        assert "SOMA_LLM_BASE_URL" in error["data"]["message"]
        assert "model profile" in error["data"]["message"]
        assert [e["type"] for e in events] == ["user.message", "assistant.error"]
