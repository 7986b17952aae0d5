"""Helpers for end-to-end memory tests over the live system."""

from __future__ import annotations

from typing import Any

import httpx

from memory.models import MemoryWrite
from tests.conversations.support import send
from tests.live import LiveSystem, read_stream, wait_until


def final_of(system: LiveSystem, key: str, accepted: dict[str, Any]) -> dict[str, Any]:
    """The terminal event of the turn ``accepted`` started."""
    after = int(accepted["stream"]["sse"].rsplit("after=", 1)[1])
    events = read_stream(system, key, accepted["session_id"], after=after, timeout=60)
    terminal = events[-1]
    assert terminal["type"] == "assistant.final", terminal
    return terminal


def chat(system: LiveSystem, key: str, message: str, **extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    accepted = send(system, key, message, **extra)
    return accepted, final_of(system, key, accepted)


def writes_of(tenant: Any) -> list[MemoryWrite]:
    return list(MemoryWrite.objects.filter(tenant=tenant).order_by("id"))


def wait_delivered(tenant: Any, *, count: int, timeout: float = 60) -> list[MemoryWrite]:
    def done() -> list[MemoryWrite] | None:
        writes = writes_of(tenant)
        return writes if len(writes) == count and all(w.state == "delivered" for w in writes) else None

    return wait_until(done, timeout=timeout, interval=0.2, what=f"{count} delivered memory writes")


def llm_request_ending_with(llm_url: str, text: str) -> dict[str, Any]:
    bodies = httpx.get(f"{llm_url}/_requests", timeout=10).json()
    return next(b for b in reversed(bodies) if b["messages"][-1]["content"] == text)
