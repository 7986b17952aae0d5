"""The conversation HTTP API (SPEC §6): thin views over services and selectors."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations import serializers as s
from conversations.branch_listing import ALL, BRANCH, all_requested, branch_page, listed_leaf
from conversations.envelope import envelope_of
from conversations.selectors import events_after, events_before, session_for, session_list
from conversations.services.accept import MessageInput
from conversations.services.sessions import session_cancel, session_delete, session_rename
from conversations.sse import MAX_CURSOR, parse_cursor
from conversations.turn.admission import message_admit_accept
from somaagent.errors import PayloadTooLarge, ValidationFailed
from somaagent.identity.authentication import principal_of

IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
MAX_PAGE = 500


def int_param(request: Request, name: str, default: int, *, maximum: int, minimum: int = 1) -> int:
    """A whole-number query parameter within bounds; 400 naming it otherwise."""
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    assert raw is not None
    message = f"{name} must be an integer between {minimum} and {maximum}."
    # Digits only: int() would also take " 5", "+5" and "5_0", which the document does not.
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        raise ValidationFailed(message, details={name: raw[:40]})
    value = int(raw)
    if value < minimum or value > maximum:
        raise ValidationFailed(message, details={name: raw})
    return value


def _page_size(default: int, maximum: int) -> OpenApiParameter:
    return OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": maximum},
        description=f"page size (1-{maximum}, default {default})",
    )


def _cursor(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(
        name, {"type": "integer", "minimum": 0, "maximum": MAX_CURSOR}, description=description
    )


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
    OpenApiParameter.HEADER,
    description="1 to 255 printable ASCII characters; the same key and body: the same answer",
)


def idempotency_key_of(request: Request) -> str | None:
    """The request's Idempotency-Key header, if any; 400 if malformed."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not IDEMPOTENCY_KEY_RE.match(key):
        raise ValidationFailed(
            "Idempotency-Key must be 1 to 255 printable ASCII characters.",
            details={"Idempotency-Key": "invalid"},
        )
    return key


SESSION_ID = OpenApiParameter(
    "session_id", {"type": "string", "format": "uuid"}, OpenApiParameter.PATH, description="another: 404"
)


class SessionMessageView(APIView):
    @extend_schema(
        request=s.MessageInSerializer,
        responses={202: s.MessageAcceptedSerializer},
        parameters=[IDEMPOTENCY_KEY],
        summary="Send a message; the reply streams on the returned URLs",
    )
    def post(self, request: Request) -> Response:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > settings.SOMA.max_request_bytes:
            raise PayloadTooLarge(
                "The request body is too large.",
                details={"max_bytes": settings.SOMA.max_request_bytes},
            )
        key = idempotency_key_of(request)
        serializer = s.MessageInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        v = serializer.validated_data
        body = message_admit_accept(  # policy (403) and budget (429) before anything is written
            principal=principal_of(request),
            data=MessageInput(
                message=v["message"],
                session_id=v.get("session_id"),
                persona_id=v.get("persona_id"),
                attachments=tuple(v.get("attachments") or ()),
                metadata=v.get("metadata"),
                parent_event_id=v.get("parent_event_id"),
            ),
            idempotency_key=key,
        )
        return Response(body, status=status.HTTP_202_ACCEPTED)


class SessionListView(APIView):
    @extend_schema(
        responses={200: s.SessionPageSerializer},
        parameters=[_page_size(50, 200), _cursor("offset", "sessions to skip")],
        summary="List your sessions, most recent first",
        operation_id="sessions_list",
    )
    def get(self, request: Request) -> Response:
        limit = int_param(request, "limit", 50, maximum=200)
        offset = parse_cursor(
            request.query_params.get("offset"), name="offset"
        )  # bounded: SQL OFFSET is 64-bit
        principal = principal_of(request)
        rows = list(
            session_list(tenant=principal.tenant, owner=principal.session_owner)[offset : offset + limit + 1]
        )
        return Response(
            {
                "sessions": s.SessionSerializer(rows[:limit], many=True).data,
                "next_offset": offset + limit if len(rows) > limit else None,
            }
        )


class SessionDetailView(APIView):
    @extend_schema(responses={200: s.SessionSerializer}, parameters=[SESSION_ID], summary="Read one session")
    def get(self, request: Request, session_id: str) -> Response:
        session = session_for(principal_of(request), session_id)
        return Response(s.SessionSerializer(session).data)

    @extend_schema(
        request=s.SessionPatchSerializer,
        responses={200: s.SessionSerializer},
        parameters=[SESSION_ID],
        summary="Rename a session",
    )
    def patch(self, request: Request, session_id: str) -> Response:
        session = session_for(principal_of(request), session_id)
        serializer = s.SessionPatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        session = session_rename(session=session, title=serializer.validated_data["title"])
        return Response(s.SessionSerializer(session).data)

    @extend_schema(responses={204: None}, parameters=[SESSION_ID], summary="Delete a session and its events")
    def delete(self, request: Request, session_id: str) -> Response:
        session = session_for(principal_of(request), session_id)
        session_delete(session=session)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SessionEventsView(APIView):
    @extend_schema(
        responses={200: s.EventPageSerializer},
        parameters=[
            SESSION_ID,
            _cursor("after", "cursor: events after this id"),
            _cursor("before", "cursor: the last `limit` events before this id (older pages); not with after"),
            _page_size(100, MAX_PAGE),
            BRANCH,
            ALL,
        ],
        summary="Persisted events of the active branch (or another, or all) in order, paged",
    )
    def get(self, request: Request, session_id: str) -> Response:
        session = session_for(principal_of(request), session_id)
        after = parse_cursor(request.query_params.get("after"), name="after")
        limit = int_param(request, "limit", 100, maximum=MAX_PAGE)
        leaf = None if all_requested(request) else listed_leaf(request, session)
        if leaf is not None:
            before = request.query_params.get("before")
            return Response(
                branch_page(
                    session=session,
                    leaf=leaf,
                    after=after,
                    before=parse_cursor(before, name="before") if before else None,
                    limit=limit,
                )
            )
        if request.query_params.get("before"):
            return Response(_page_before(request, session.pk, after=after, limit=limit))
        events = events_after(session_id=session.pk, after=after, limit=limit + 1)
        page = events[:limit]
        body: dict[str, Any] = {
            "events": [envelope_of(e) for e in page],
            "next_cursor": str(page[-1].seq) if len(events) > limit else None,
        }
        return Response(body)


def _page_before(request: Request, session_pk: Any, *, after: int, limit: int) -> dict[str, Any]:
    """Older history, upwards: ``prev_cursor`` is the ``before`` of the page before, null at the start
    (or at ``after``, when given too: the page then lies between the two cursors)."""
    before = parse_cursor(request.query_params.get("before"), name="before")
    events = [
        e for e in events_before(session_id=session_pk, before=before, limit=limit + 1) if e.seq > after
    ]
    page = events[-limit:]
    return {
        "events": [envelope_of(e) for e in page],
        "next_cursor": None,
        "prev_cursor": str(page[0].seq) if len(events) > limit else None,
    }


class SessionCancelView(APIView):
    @extend_schema(
        request=None,
        responses={202: s.CancelledSerializer},
        parameters=[SESSION_ID],
        summary="Stop the running reply",
    )
    def post(self, request: Request, session_id: str) -> Response:
        session = session_for(principal_of(request), session_id)
        cancelled = session_cancel(session=session)
        return Response(
            {"session_id": str(session.pk), "cancelled_turns": [str(t) for t in cancelled]},
            status=status.HTTP_202_ACCEPTED,
        )
