"""Helpers for the tool integration tests."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from tests.live import TERMINAL, LiveSystem, read_stream


def call(name: str, args: dict[str, Any]) -> str:
    """A stub-model directive asking for one tool call with any JSON arguments."""
    encoded = base64.urlsafe_b64encode(json.dumps(args).encode()).decode()
    return f"[[tool_b64={name}:{encoded}]]"


def turn_events(
    system: LiveSystem, key: str, accepted: dict[str, Any], timeout: float = 90
) -> list[dict[str, Any]]:
    """The session's events up to this turn's terminal event."""
    events = read_stream(system, key, accepted["session_id"], timeout=timeout)
    assert sum(1 for e in events if e["type"] in TERMINAL) == 1
    return events


def of_type(events: list[dict[str, Any]], type: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == type]


def model_requests(llm_url: str, marker: str) -> list[dict[str, Any]]:
    """What the stub model was asked for the user message containing ``marker``."""
    bodies = httpx.get(f"{llm_url}/_requests", timeout=10).json()
    out = []
    for body in bodies:
        users = [m for m in body["messages"] if m["role"] == "user"]
        if users and marker in str(users[-1]["content"]):
            out.append(body)
    return out
