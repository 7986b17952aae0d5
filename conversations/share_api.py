"""Share links over the API (issue 18): make one for a chat, list yours, revoke one."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations import serializers as s
from conversations.api import SESSION_ID
from conversations.models import ShareLink
from conversations.selectors import session_for
from conversations.services.shares import share_create, share_list, share_revoke
from somaagent.identity.authentication import principal_of


def _link(request: Request, link: ShareLink) -> dict[str, Any]:
    return {
        "id": str(link.pk),
        "session_id": str(link.session_id),
        "session_title": link.session.title,
        "url": request.build_absolute_uri(f"/s/{link.token}/"),
        "up_to": str(link.up_to_seq),
        "created_at": link.created_at.isoformat(),
    }


class SessionShareView(APIView):
    @extend_schema(
        request=s.ShareCreateSerializer,
        responses={201: dict},
        parameters=[SESSION_ID],
        summary="Make a read-only link to this chat as it is now (or up to one of its events)",
    )
    def post(self, request: Request, session_id: str) -> Response:
        principal = principal_of(request)
        session = session_for(principal, session_id)
        serializer = s.ShareCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        up_to = serializer.validated_data.get("up_to_event_id")
        link = share_create(principal=principal, session=session, up_to_event_id=up_to)
        return Response(_link(request, link), status=status.HTTP_201_CREATED)


class ShareListView(APIView):
    @extend_schema(responses={200: dict}, summary="Your share links that still open")
    def get(self, request: Request) -> Response:
        links = share_list(principal=principal_of(request))
        return Response({"shares": [_link(request, link) for link in links]})


class ShareDetailView(APIView):
    @extend_schema(
        responses={204: None},
        parameters=[OpenApiParameter("share_id", str, OpenApiParameter.PATH)],
        summary="Revoke a share link (it answers 404 from now on)",
    )
    def delete(self, request: Request, share_id: str) -> Response:
        share_revoke(principal=principal_of(request), share_id=share_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
