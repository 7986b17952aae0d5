"""Parsing OpenAI requests and following one turn's events (no processes needed)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conversations.openai_front.reply import (
    CANCELLED,
    ERROR,
    FINAL,
    RESTART,
    TEXT,
    ReplyTracker,
    turn_error,
)
from conversations.openai_front.request import error_payload, parse_completion_request
from somaagent.errors import SomaError


def body(**fields: Any) -> bytes:
    doc = {"model": "somaagent", "messages": [{"role": "user", "content": "hi"}], **fields}
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


def test_the_last_user_message_is_the_message() -> None:
    parsed = parse_completion_request(
        body(
            messages=[
                {"role": "system", "content": "ignored: the persona decides"},
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "reply"},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "second"}, {"type": "text", "text": "part"}],
                },
            ],
            stream=True,
            stream_options={"include_usage": True},
            user="conv-1",
        )
    )
    assert parsed.message == "second\npart"
    assert parsed.stream and parsed.include_usage and parsed.user == "conv-1"
    assert parsed.persona_name is None and parsed.metadata == {"source": "openai"}


def test_a_persona_model_names_the_persona() -> None:
    assert parse_completion_request(body(model="somaagent/support")).persona_name == "support"


@pytest.mark.parametrize(
    ("raw", "status", "code", "param"),
    [
        (b"{not json", 400, "invalid_json", None),
        (b"[" * 100_000 + b"]" * 100_000, 400, "invalid_json", None),
        (b"[]", 400, "validation_error", None),
        (body(model=...), 400, "validation_error", "model"),
        (body(model="gpt-4o"), 404, "model_not_found", "model"),
        (body(messages=[]), 400, "validation_error", "messages"),
        (body(messages=[{"role": "assistant", "content": "x"}]), 400, "validation_error", "messages"),
        (body(messages=[{"role": "user", "content": "   "}]), 400, "validation_error", "messages"),
        (
            body(messages=[{"role": "user", "content": [{"type": "image_url"}]}]),
            400,
            "validation_error",
            "messages",
        ),
        (body(messages=[{"role": "user", "content": 5}]), 400, "validation_error", "messages"),
        (body(n=2), 400, "validation_error", "n"),
        (body(stream="yes"), 400, "validation_error", "stream"),
        (body(user=""), 400, "validation_error", "user"),
        (body(user="x" * 300), 400, "validation_error", "user"),
        (body(metadata=[1]), 400, "validation_error", "metadata"),
        (body(messages=[{"role": "user", "content": "x" * 40_000}]), 413, "payload_too_large", "messages"),
    ],
)
def test_bad_requests_get_openai_errors(raw: bytes, status: int, code: str, param: str | None) -> None:
    with pytest.raises(SomaError) as failure:
        parse_completion_request(raw)
    assert failure.value.status_code == status and failure.value.code == code
    error = error_payload(failure.value)["error"]
    assert set(error) == {"message", "type", "code", "param"} and error["param"] == param
    assert error["type"] == "invalid_request_error"


def env(kind: str, **data: Any) -> dict[str, Any]:
    return {"type": kind, "data": data}


def test_the_tracker_keeps_only_this_turns_events() -> None:
    tracker = ReplyTracker("mine")
    steps = [
        tracker.feed(e)
        for e in [
            env("assistant.delta", text="earlier turn"),
            env("assistant.final", message="earlier", reply_to="other"),
            env("assistant.started", model="m", reply_to="mine", restart=False),
            env("assistant.started", model="backup", reply_to="mine", restart=False, fallback={}),
            env("assistant.delta", text="Hel"),
            env("tool.start", tool_name="x"),
            env("assistant.delta", text="lo"),
            env("assistant.final", message="Hello", reply_to="mine"),
        ]
    ]
    kinds = [(s.kind, s.text) for s in steps if s is not None]
    assert kinds == [(TEXT, "Hel"), (TEXT, "lo"), (FINAL, "")]
    assert tracker.model == "backup"


def test_the_tracker_reports_a_restart_and_terminal_events_without_a_start() -> None:
    tracker = ReplyTracker("mine")
    tracker.feed(env("assistant.started", reply_to="mine", restart=False))
    step = tracker.feed(env("assistant.started", reply_to="mine", restart=True))
    assert step is not None and step.kind == RESTART
    queued = ReplyTracker("q")
    cancelled = queued.feed(env("assistant.cancelled", partial="", reply_to="q"))
    assert cancelled is not None and cancelled.kind == CANCELLED
    error = ReplyTracker("e").feed(env("assistant.error", code="no_model_configured", reply_to="e"))
    assert error is not None and error.kind == ERROR


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("budget_exceeded", 429, "rate_limit_error"),
        ("policy_denied", 403, "permission_error"),
        ("no_model_configured", 503, "server_error"),
        ("llm_unavailable", 502, "server_error"),
    ],
)
def test_turn_errors_map_to_statuses(code: str, status: int, kind: str) -> None:
    exc = turn_error({"code": code, "message": "m"})
    assert exc.status_code == status and error_payload(exc)["error"]["type"] == kind
