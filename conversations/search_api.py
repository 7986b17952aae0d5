"""Search over your conversations (issue 18): ``GET /v1/search?q=``."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations.api import int_param
from conversations.services.search import MAX_OFFSET, conversation_search
from memory.search import SearchTimeout
from somaagent.errors import ServiceUnavailable, ValidationFailed
from somaagent.identity.authentication import principal_of

MAX_QUERY_CHARS = 500


class SearchView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "q",
                {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_CHARS, "pattern": r"\S"},
                OpenApiParameter.QUERY,
                required=True,
                description="the words to find",
            ),
            OpenApiParameter(
                "limit", {"type": "integer", "minimum": 1, "maximum": 50}, description="page size (20)"
            ),
            OpenApiParameter(
                "offset",
                {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
                description="skip this many",
            ),
        ],
        responses={200: dict},
        summary="Search your messages and the replies to them",
    )
    def get(self, request: Request) -> Response:
        query = request.query_params.get("q", "")
        if not query.strip() or len(query) > MAX_QUERY_CHARS:
            raise ValidationFailed(f"q must be 1 to {MAX_QUERY_CHARS} characters.", details={"q": "invalid"})
        limit = int_param(request, "limit", 20, maximum=50)
        offset = int_param(request, "offset", 0, maximum=MAX_OFFSET, minimum=0)
        try:
            hits = conversation_search(
                principal=principal_of(request), query=query, limit=limit + 1, offset=offset
            )
        except SearchTimeout:
            raise ServiceUnavailable("The search took too long; try more specific words.") from None
        page = hits[:limit]
        return Response(
            {
                "results": [
                    {
                        "session_id": h.session_id,
                        "session_title": h.session_title,
                        "event_id": h.event_id,
                        "cursor": h.cursor,
                        "type": h.type,
                        "occurred_at": h.occurred_at.isoformat(),
                        "snippet": h.snippet,
                        "highlights": [list(span) for span in h.highlights],
                    }
                    for h in page
                ],
                "next_offset": offset + limit if len(hits) > limit and offset + limit <= MAX_OFFSET else None,
            }
        )
