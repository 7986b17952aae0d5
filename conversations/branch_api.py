"""Another reply to a message over the API (issue 18): ``POST …/events/{event_id}/regenerate``.

A message sent with ``parent_event_id`` (``api.SessionMessageView``) starts a
branch at any event; regenerate starts one at a message's replies. See
conversations/branches.py.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations import serializers as s
from conversations.api import IDEMPOTENCY_KEY, SESSION_ID, idempotency_key_of
from conversations.selectors import session_for
from conversations.turn.admission import reply_admit_regenerate
from somaagent.identity.authentication import principal_of

EVENT_ID = OpenApiParameter(
    "event_id",
    {"type": "string", "format": "uuid"},
    OpenApiParameter.PATH,
    description="a user message, or any event of a reply to it",
)


class RegenerateView(APIView):
    @extend_schema(
        request=None,
        responses={202: s.MessageAcceptedSerializer},
        parameters=[
            SESSION_ID,
            EVENT_ID,
            IDEMPOTENCY_KEY,
        ],
        summary="Another reply to a message, beside the replies it has (a new branch)",
        description=(
            "Queues a new turn answering the user message `event_id` names (or the message a reply "
            "answers). Its events go under that message, beside the earlier replies, which stay; the "
            "answer's `event_id` is the message's, `stream` where the new reply streams."
        ),
    )
    def post(self, request: Request, session_id: str, event_id: str) -> Response:
        principal = principal_of(request)
        session = session_for(principal, session_id)
        body = reply_admit_regenerate(
            principal=principal,
            session=session,
            event_id=event_id,
            idempotency_key=idempotency_key_of(request),
        )
        return Response(body, status=status.HTTP_202_ACCEPTED)
