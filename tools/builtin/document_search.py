"""``document_search``: search the documents of the chat's collections (documents.retrieval)."""

from __future__ import annotations

import uuid
from typing import Any

from documents.conf import documents_settings
from documents.search import chunk_search
from documents.selectors import turn_collection_ids
from memory.search import SearchTimeout
from tools.builtin.query_args import QUERY_AND_TOP_K
from tools.registry import Tool, ToolContext, ToolError


def document_search(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """The same collections a turn of this chat draws on, searched for ``query``."""
    collections = turn_collection_ids(
        tenant_id=uuid.UUID(ctx.tenant_id),
        persona_id=uuid.UUID(ctx.persona_id) if ctx.persona_id else None,
        session_id=uuid.UUID(ctx.session_id),
        owner_id=ctx.session_owner_id,
    )
    try:
        hits = chunk_search(
            tenant_id=uuid.UUID(ctx.tenant_id),
            collection_ids=collections,
            text=str(args["query"]),
            top_k=int(args.get("top_k") or 5),
            timeout=min(ctx.timeout, documents_settings().search_timeout * 5),
        )
    except SearchTimeout as exc:
        raise ToolError(str(exc), code="search_timeout") from exc
    return {
        "results": [
            {
                "document_id": str(hit.document_id),
                "filename": hit.filename,
                "page": hit.page,
                "heading": hit.heading,
                "text": hit.text,
                "score": float(f"{hit.score:.4g}"),
            }
            for hit in hits
        ]
    }


TOOL = Tool(
    name="document_search",
    description=(
        "Search the documents of this chat's collections (uploaded files: PDF, DOCX, web pages, "
        "notes) for passages relevant to a query; cite what you use by file name and page."
    ),
    parameters=QUERY_AND_TOP_K,
    run=document_search,
    default_timeout=10.0,
)
