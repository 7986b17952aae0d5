"""Readiness details (``/readyz``): the sandbox's isolation level and the tools this deployment has."""

from __future__ import annotations

from typing import Any

from somaagent.health import register_check
from tools.registry import all_tools
from tools.sandbox import OFF, sandbox


class SandboxOff(Exception):
    """Reported as a failed, non-required check: code execution is refused."""


def sandbox_check() -> dict[str, Any]:
    active = sandbox()
    if active.level == OFF:
        raise SandboxOff(active.detail)
    return {"isolation": active.level, "detail": active.detail}


def tools_check() -> dict[str, Any]:
    tools = all_tools()
    return {
        "available": [t.name for t in tools if t.unavailable() is None],
        "unavailable": {t.name: why for t in tools if (why := t.unavailable()) is not None},
    }


def register() -> None:
    register_check("sandbox", sandbox_check, required=False)
    register_check("tools", tools_check, required=False)
