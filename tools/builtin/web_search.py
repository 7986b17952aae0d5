"""``web_search``: search the web through a SearxNG-compatible service (``SOMA_SEARCH_URL``)."""

from __future__ import annotations

from typing import Any

from tools.registry import Tool, ToolContext, ToolError
from tools.search import search_port


def _unavailable() -> str | None:
    return None if search_port() is not None else "SOMA_SEARCH_URL is not set"


def web_search(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    port = search_port()
    if port is None:
        raise ToolError("Web search is not configured.", code="tool_unavailable")
    hits = port.search(
        query=args["query"], max_results=int(args.get("max_results") or 5), timeout=ctx.timeout
    )
    return {"query": args["query"], "results": [h.__dict__ for h in hits]}


TOOL = Tool(
    name="web_search",
    description="Search the web. Returns titles, URLs and snippets of the top results.",
    parameters={
        "type": "object",
        "properties": {
            "query": {"type": "string", "minLength": 1, "maxLength": 500},
            "max_results": {"type": "integer", "minimum": 1, "maximum": 10},
        },
        "required": ["query"],
        "additionalProperties": False,
    },
    run=web_search,
    default_timeout=15.0,
    unavailable=_unavailable,
)
