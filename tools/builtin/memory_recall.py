"""``memory_recall``: ask long-term memory (the memory port) about something."""

from __future__ import annotations

from typing import Any

from memory.port import MemoryServiceError
from memory.services.recall import memory_recall as recall
from tools.builtin.query_args import QUERY_AND_TOP_K
from tools.registry import Tool, ToolContext, ToolError


def memory_recall(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    try:
        found = recall(
            tenant=ctx.tenant_id,
            namespace=ctx.memory_namespace,
            query=str(args["query"]),
            top_k=int(args.get("top_k") or 5),
            timeout=ctx.timeout,
        )
    except MemoryServiceError as exc:
        raise ToolError(f"The memory service failed: {exc}", code="memory_unavailable") from exc
    return {"memories": [m.reference() for m in found]}


TOOL = Tool(
    name="memory_recall",
    description="Search the long-term memory of earlier conversations for facts relevant to a query.",
    parameters=QUERY_AND_TOP_K,
    run=memory_recall,
    default_timeout=10.0,
)
