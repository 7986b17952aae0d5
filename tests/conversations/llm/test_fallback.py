"""Retries and fallback over real HTTP: stub providers that fail in each way a provider fails."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest

from conversations.llm import openai_compat
from conversations.llm.fallback import Fallback, ResilientChatStream, RetryPolicy
from conversations.llm.openai_compat import OpenAICompatibleLlm
from conversations.llm.port import ChatRequest, LlmError, ModelTarget
from somaagent.process_local import PerProcess
from tests.live import free_port

POLICY = RetryPolicy(max_retries=2, base_delay=0.05, max_delay=0.2, retry_after_cap=2.0)


@pytest.fixture(autouse=True)
def short_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 2 s read timeout so a hung provider fails fast (the setting is SOMA_LLM_READ_TIMEOUT)."""
    client = httpx.Client(timeout=httpx.Timeout(2.0, connect=2.0))
    monkeypatch.setattr(openai_compat, "_client", PerProcess(lambda: client))


def target(stub_url: str, directives: str = "", *, label: str = "") -> ModelTarget:
    key = uuid.uuid4().hex[:8]
    prefix = f"/d/key={key},{directives}" if directives else ""
    return ModelTarget(
        base_url=f"{stub_url}{prefix}/v1", model="stub-model", label=label or directives or "ok"
    )


def run(
    chain: list[ModelTarget], message: str = "hello [[tokens=5]]"
) -> tuple[str, ResilientChatStream, list[Fallback]]:
    switches: list[Fallback] = []
    stream = ResilientChatStream(
        OpenAICompatibleLlm(),
        chain,
        ChatRequest(target=chain[0], messages=[{"role": "user", "content": message}]),
        policy=POLICY,
        on_fallback=switches.append,
    )
    text = "".join(chunk.text for chunk in stream)
    return text, stream, switches


EXPECTED = "".join(f"t{i} " for i in range(5))


def test_a_healthy_provider_answers_without_retries(llm_stub) -> None:
    text, stream, switches = run([target(llm_stub.url)])
    assert text == EXPECTED and stream.attempts.entries == [] and switches == []


@pytest.mark.parametrize(
    ("directives", "code"),
    [
        ("status=503", "llm_unavailable"),
        ("status=500", "llm_unavailable"),
        ("status=429", "llm_rate_limited"),
        ("break_after=0", "llm_stream_interrupted"),
        ("hang=", "llm_timeout"),
    ],
)
def test_transient_failures_are_retried_on_the_same_provider(llm_stub, directives: str, code: str) -> None:
    primary = target(llm_stub.url, f"fail_first=2,{directives}")
    backup = target(llm_stub.url, label="backup")
    text, stream, switches = run([primary, backup])
    assert text == EXPECTED
    assert [e["code"] for e in stream.attempts.entries] == [code, code]
    assert switches == [] and stream.target == primary


@pytest.mark.parametrize(
    ("directives", "code", "tries"),
    [
        ("status=503", "llm_unavailable", 3),
        ("status=502", "llm_unavailable", 3),
        ("status=429", "llm_rate_limited", 3),
        ("break_after=0", "llm_stream_interrupted", 3),
        ("hang=", "llm_timeout", 3),
        ("status=401", "llm_auth_failed", 1),
        ("status=400", "llm_rejected", 1),
    ],
)
def test_a_failing_provider_falls_back_to_the_next(llm_stub, directives: str, code: str, tries: int) -> None:
    primary = target(llm_stub.url, directives)
    backup = target(llm_stub.url, label="backup")
    text, stream, switches = run([primary, backup])
    assert text == EXPECTED
    assert [e["code"] for e in stream.attempts.entries] == [code] * tries
    assert [(s.source, s.target, s.error.code) for s in switches] == [(primary, backup, code)]
    assert switches[0].as_dict()["reason"] == code
    assert stream.target == backup


def test_an_unreachable_provider_falls_back(llm_stub) -> None:
    dead = ModelTarget(base_url=f"http://127.0.0.1:{free_port()}/v1", model="gone", label="dead")
    text, stream, switches = run([dead, target(llm_stub.url)])
    assert text == EXPECTED
    assert [e["code"] for e in stream.attempts.entries] == ["llm_unreachable"] * 3
    assert switches[0].error.code == "llm_unreachable"


def test_retry_after_is_honoured(llm_stub) -> None:
    primary = target(llm_stub.url, "fail_first=1,status=429,retry_after=0.6")
    started = time.monotonic()
    text, stream, _ = run([primary])
    assert text == EXPECTED
    assert time.monotonic() - started >= 0.6
    assert stream.attempts.entries[0]["retry_in"] >= 0.6


def test_a_retry_after_beyond_the_cap_falls_back_at_once(llm_stub) -> None:
    primary = target(llm_stub.url, "status=429,retry_after=3600")
    text, stream, switches = run([primary, target(llm_stub.url)])
    assert text == EXPECTED
    assert stream.attempts.entries == [
        {"target": primary.label, "code": "llm_rate_limited", "status": 429, "retry_in": None}
    ]
    assert len(switches) == 1


def test_when_every_provider_fails_the_last_error_is_raised(llm_stub) -> None:
    chain = [target(llm_stub.url, "status=503"), target(llm_stub.url, "status=401")]
    with pytest.raises(LlmError) as failure:
        run(chain)
    assert failure.value.code == "llm_auth_failed"


def test_a_stream_that_breaks_after_text_is_not_restarted(llm_stub) -> None:
    chain = [target(llm_stub.url, "break_after=3"), target(llm_stub.url)]
    switches: list[Fallback] = []
    stream = ResilientChatStream(
        OpenAICompatibleLlm(),
        chain,
        ChatRequest(target=chain[0], messages=[{"role": "user", "content": "[[tokens=10]]"}]),
        policy=POLICY,
        on_fallback=switches.append,
    )
    received: list[str] = []
    with pytest.raises(LlmError) as failure:
        for chunk in stream:
            received.append(chunk.text)
    assert failure.value.code == "llm_stream_interrupted"
    assert "".join(received) == "t0 t1 t2 "
    assert switches == [] and stream.attempts.entries == []


def test_close_during_backoff_stops_promptly(llm_stub) -> None:
    slow = RetryPolicy(max_retries=5, base_delay=30, max_delay=30, retry_after_cap=60)
    chain = [target(llm_stub.url, "status=503")]
    stream = ResilientChatStream(
        OpenAICompatibleLlm(),
        chain,
        ChatRequest(target=chain[0], messages=[{"role": "user", "content": "x"}]),
        policy=slow,
    )
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(list(stream)))
    worker.start()
    deadline = time.monotonic() + 20
    while not stream.attempts.entries and time.monotonic() < deadline:
        time.sleep(0.02)
    stream.close()
    worker.join(10)
    assert not worker.is_alive() and result == [[]]


def test_backoff_is_bounded_and_jittered() -> None:
    error = LlmError("llm_unavailable", "x", retryable=True)
    policy = RetryPolicy(max_retries=10, base_delay=0.5, max_delay=4.0, retry_after_cap=10)
    delays = [policy.delay(error, n) for n in range(6)]
    assert all(d is not None and d <= 4.0 for d in delays)
    assert delays[0] is not None and 0.25 <= delays[0] <= 0.5
    assert len({policy.delay(error, 5) for _ in range(20)}) > 1, "no jitter"
    assert policy.delay(error, 10) is None
    assert policy.delay(LlmError("llm_auth_failed", "x", retryable=False), 0) is None
    limited = LlmError("llm_rate_limited", "x", retryable=True, retry_after=3)
    delay = policy.delay(limited, 0)
    assert delay is not None and 3 <= delay < 3.1
    assert policy.delay(LlmError("llm_rate_limited", "x", retryable=True, retry_after=11), 0) is None
