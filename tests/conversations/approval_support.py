"""Helpers for the approval tests: a tenant whose policy asks for approval, waiting and answering."""

from __future__ import annotations

from typing import Any

import httpx

from conversations.models import ToolApproval
from somaagent.audit import Actor
from somaagent.policy.data import policy_data_set
from tests.live import LiveSystem, read_stream


def needs_approval(tenant: Any, *rules: Any) -> None:
    """The tenant's policy: calls of these tools (or matching these rules) wait for approval."""
    policy_data_set(tenant=tenant, document={"approval_tools": list(rules)}, actor=Actor.system("test"))


def until_requested(
    system: LiveSystem, key: str, session_id: str, *, timeout: float = 60
) -> list[dict[str, Any]]:
    """The session's stream up to its (first) ``tool.approval_requested``."""
    return read_stream(
        system, key, session_id, until=lambda e: e["type"] == "tool.approval_requested", timeout=timeout
    )


def answer(system: LiveSystem, key: str, session_id: str, call_id: str, **body: Any) -> httpx.Response:
    with system.client(key) as c:
        return c.post(f"/v1/sessions/{session_id}/approvals/{call_id}", json=body)


def approval_of(session_id: str) -> ToolApproval:
    return ToolApproval.objects.select_related("run", "turn").get(session_id=session_id)
