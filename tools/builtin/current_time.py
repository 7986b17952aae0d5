"""``current_time``: the current date and time, in UTC or a named time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tools.registry import Tool, ToolContext, ToolError


def current_time(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    name = args.get("timezone") or "UTC"
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ToolError(f"Unknown time zone {name!r}.", code="invalid_arguments") from exc
    now = datetime.now(UTC)
    local = now.astimezone(zone)
    return {
        "iso": local.isoformat(),
        "timezone": name,
        "unix": round(now.timestamp(), 3),
        "weekday": local.strftime("%A"),
    }


TOOL = Tool(
    name="current_time",
    description="The current date and time. Optionally in an IANA time zone such as Europe/Paris.",
    parameters={
        "type": "object",
        "properties": {"timezone": {"type": "string", "maxLength": 64, "description": "IANA zone name"}},
        "additionalProperties": False,
    },
    run=current_time,
    default_timeout=5.0,
)
