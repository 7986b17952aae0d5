"""The arguments of the built-in search tools over this tenant's own data (``memory_recall``,
``document_search``): a query and how many results, validated alike."""

from __future__ import annotations

from typing import Any

QUERY_AND_TOP_K: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "minLength": 1, "maxLength": 2000},
        "top_k": {"type": "integer", "minimum": 1, "maximum": 20},
    },
    "required": ["query"],
    "additionalProperties": False,
}
