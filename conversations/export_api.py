"""Exporting and importing chats over the API (issue 18): one chat or all of yours as JSON or
Markdown; import SomaAgent's JSON or ChatGPT's ``conversations.json`` as new chats."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from django.http import HttpResponse, HttpResponseBase, JsonResponse, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations.api import SESSION_ID
from conversations.selectors import session_for
from conversations.services.export import CHAT_PAGE, FORMAT, chat_document, chat_markdown, chats_page
from conversations.services.importing import import_chats, import_parse
from somaagent.async_db import db_call
from somaagent.errors import ValidationFailed
from somaagent.identity.authentication import principal_of

EXPORT_FORMAT = OpenApiParameter(
    "format", str, OpenApiParameter.QUERY, enum=["json", "markdown"], description="json (default) or markdown"
)

# JSON by default, Markdown with format=markdown (the charset is part of the media type sent).
EXPORT_RESPONSES: dict[Any, Any] = {
    (200, "application/json"): dict,
    (200, "text/markdown; charset=utf-8"): str,
}


def _export_format(request: Request, allowed: tuple[str, ...]) -> str:
    fmt = request.query_params.get("format", "json")
    if fmt not in allowed:
        raise ValidationFailed(f"format must be one of {', '.join(allowed)}.", details={"format": "invalid"})
    return fmt


def _download(response: HttpResponseBase, filename: str) -> HttpResponseBase:
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class SessionExportView(APIView):
    @extend_schema(
        parameters=[SESSION_ID, EXPORT_FORMAT],
        responses=EXPORT_RESPONSES,
        summary="Export one chat as JSON (lossless) or Markdown",
    )
    def get(self, request: Request, session_id: str) -> HttpResponseBase:
        principal = principal_of(request)
        session = session_for(principal, session_id)
        if _export_format(request, ("json", "markdown")) == "markdown":
            text = chat_markdown(session=session)
            return _download(
                HttpResponse(text, content_type="text/markdown; charset=utf-8"), f"chat-{session.pk}.md"
            )
        return _download(
            JsonResponse(chat_document(principal=principal, session=session)), f"chat-{session.pk}.json"
        )


class ExportAllView(APIView):
    @extend_schema(
        parameters=[EXPORT_FORMAT],
        responses=EXPORT_RESPONSES,
        summary="Export all your chats as one JSON document or one Markdown file (streamed)",
    )
    def get(self, request: Request) -> HttpResponseBase:
        markdown = _export_format(request, ("json", "markdown")) == "markdown"
        principal = principal_of(request)
        page = db_call(chats_page)

        async def chats() -> AsyncIterator[str]:
            offset = 0
            while True:
                docs = await page(principal=principal, offset=offset, markdown=markdown)
                for doc in docs:
                    yield doc
                if len(docs) < CHAT_PAGE:
                    break
                offset += len(docs)

        async def json_chunks() -> AsyncIterator[str]:
            yield f'{{"format":"{FORMAT}","exported_at":"{timezone.now().isoformat()}","chats":['
            first = True
            async for doc in chats():
                yield doc if first else "," + doc
                first = False
            yield "]}"

        async def markdown_chunks() -> AsyncIterator[str]:
            first = True
            async for doc in chats():  # each chat's own "# title", a rule between chats
                yield doc if first else "\n---\n\n" + doc
                first = False

        if markdown:
            response = StreamingHttpResponse(markdown_chunks(), content_type="text/markdown; charset=utf-8")
            return _download(response, "chats.md")
        return _download(StreamingHttpResponse(json_chunks(), content_type="application/json"), "chats.json")


class ImportView(APIView):
    @extend_schema(
        request=dict,
        responses={201: dict},
        summary="Import chats: a SomaAgent export (one chat or all) or ChatGPT's conversations.json",
    )
    def post(self, request: Request) -> Response:
        principal = principal_of(request)
        chats = import_parse(request.data)
        sessions = import_chats(principal=principal, chats=chats)
        body = [
            {"session_id": str(session.pk), "title": session.title, "messages": len(chat.messages)}
            for session, chat in zip(sessions, chats, strict=True)
        ]
        return Response({"sessions": body}, status=status.HTTP_201_CREATED)
