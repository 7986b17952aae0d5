"""``python``: run Python source in the sandbox; returns stdout, stderr and the exit status."""

from __future__ import annotations

import dataclasses
from typing import Any

from tools.registry import Tool, ToolContext, ToolError, ToolTimeout
from tools.sandbox import SandboxLimits, SandboxUnavailable, sandbox, unavailable


def run_python(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    defaults = SandboxLimits.from_settings()
    limits = dataclasses.replace(defaults, wall_seconds=min(defaults.wall_seconds, ctx.timeout))
    try:
        result = sandbox().run_python(code=args["code"], limits=limits)
    except SandboxUnavailable as exc:
        raise ToolError(str(exc), code="sandbox_unavailable", data={"isolation": "off"}) from exc
    doc = result.as_dict()
    if result.timed_out:
        raise ToolTimeout(f"The code ran longer than {limits.wall_seconds:g} s and was killed.", data=doc)
    return doc


TOOL = Tool(
    name="python",
    description=(
        "Run a Python 3 program in an isolated sandbox (standard library only, no network, "
        "a private empty working directory). Returns stdout, stderr and exit_status. "
        "Print what you need to see."
    ),
    parameters={
        "type": "object",
        "properties": {"code": {"type": "string", "minLength": 1, "maxLength": 100_000}},
        "required": ["code"],
        "additionalProperties": False,
    },
    run=run_python,
    # Offered to the model only where the probe proved real isolation (tools/sandbox).
    unavailable=unavailable,
)
