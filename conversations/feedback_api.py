"""Feedback on replies over the API (issue 18): give, read, withdraw, list yours in a session."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations import serializers as s
from conversations.api import SESSION_ID
from conversations.selectors import session_for
from conversations.services.feedback import (
    feedback_give,
    feedback_in_session,
    feedback_of,
    feedback_reply,
    feedback_withdraw,
)
from somaagent.errors import NotFound
from somaagent.identity.authentication import principal_of

EVENT_ID = OpenApiParameter("event_id", str, OpenApiParameter.PATH, description="a reply's event_id")


class FeedbackView(APIView):
    """The caller's own feedback on one reply (``assistant.final``) of a session."""

    def _reply(self, request: Request, session_id: str, event_id: str) -> Any:
        session = session_for(principal_of(request), session_id)
        return session, feedback_reply(session=session, event_id=event_id)

    @extend_schema(
        request=s.FeedbackInputSerializer,
        responses={200: s.FeedbackSerializer},
        parameters=[SESSION_ID, EVENT_ID],
        summary="Give (or replace) your feedback on a reply",
    )
    def put(self, request: Request, session_id: str, event_id: str) -> Response:
        session, reply = self._reply(request, session_id, event_id)
        serializer = s.FeedbackInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        feedback = feedback_give(
            principal=principal_of(request),
            session=session,
            event=reply,
            rating=data["rating"],
            comment=data["comment"],
            tags=data["tags"],
        )
        return Response(s.FeedbackSerializer(feedback).data)

    @extend_schema(
        responses={200: s.FeedbackSerializer},
        parameters=[SESSION_ID, EVENT_ID],
        summary="Your feedback on a reply",
    )
    def get(self, request: Request, session_id: str, event_id: str) -> Response:
        _, reply = self._reply(request, session_id, event_id)
        feedback = feedback_of(principal=principal_of(request), event=reply)
        if feedback is None:
            raise NotFound("No feedback of yours on this reply.")
        return Response(s.FeedbackSerializer(feedback).data)

    @extend_schema(responses={204: None}, parameters=[SESSION_ID, EVENT_ID], summary="Withdraw your feedback")
    def delete(self, request: Request, session_id: str, event_id: str) -> Response:
        _, reply = self._reply(request, session_id, event_id)
        feedback_withdraw(principal=principal_of(request), event=reply)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SessionFeedbackView(APIView):
    @extend_schema(
        responses={200: s.FeedbackListSerializer},
        parameters=[SESSION_ID],
        summary="Your feedback on this session's replies",
    )
    def get(self, request: Request, session_id: str) -> Response:
        principal = principal_of(request)
        session = session_for(principal, session_id)
        rows = feedback_in_session(principal=principal, session=session)
        return Response({"feedback": s.FeedbackSerializer(rows, many=True).data})
