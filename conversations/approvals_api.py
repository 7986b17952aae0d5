"""Answering a tool call that waits for approval: ``POST /v1/sessions/{id}/approvals/{call_id}``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations.api import SESSION_ID
from conversations.models import ToolApproval
from conversations.selectors import session_for
from conversations.serializers import MetadataField
from conversations.services.approval_answer import APPROVE, DENY, Answer, approval_answer
from somaagent.identity.authentication import principal_of
from somaagent.identity.principal import Principal
from somaagent.serializers import StrictSerializer

CALL_ID = OpenApiParameter(
    "call_id", str, OpenApiParameter.PATH, description="the call_id of a tool.approval_requested event"
)


class ApprovalInputSerializer(StrictSerializer):
    decision = serializers.ChoiceField(choices=[APPROVE, DENY])
    arguments = MetadataField(
        required=False,
        help_text="approve only: the arguments to run the tool with instead of the model's (when the "
        "request's args_editable is true); checked against the tool's schema and the policy",
    )
    always = serializers.BooleanField(
        required=False, default=False, help_text="approve only: always allow this tool in this chat"
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["decision"] == DENY and ("arguments" in attrs or attrs.get("always")):
            raise serializers.ValidationError("arguments and always go with decision approve only.")
        return attrs


class ApprovalSerializer(serializers.Serializer):
    """The approval as it stands after the answer (the same body when the same answer comes again)."""

    call_id = serializers.CharField()
    request_id = serializers.UUIDField(source="run_id", help_text="the tool run's id (tool.start's)")
    tool_name = serializers.CharField(source="tool")
    status = serializers.ChoiceField(choices=ToolApproval.Status.choices)
    arguments = serializers.JSONField(help_text="what the model asked for")
    edited_arguments = serializers.JSONField(
        allow_null=True, help_text="what was approved instead, if edited"
    )
    always = serializers.BooleanField()
    reason = serializers.CharField()
    expires_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)
    decided_by = serializers.CharField()


def approval_frame_answer(
    *, principal: Principal, session_id: Any, call_id: str, data: Any
) -> dict[str, Any]:
    """The shared body of the HTTP endpoint and the WebSocket's ``approval`` frame."""
    session = session_for(principal, session_id)
    serializer = ApprovalInputSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    v = serializer.validated_data
    approval = approval_answer(
        principal=principal,
        session=session,
        call_id=call_id,
        answer=Answer(decision=v["decision"], arguments=v.get("arguments"), always=v["always"]),
    )
    return dict(ApprovalSerializer(approval).data)


class ApprovalView(APIView):
    @extend_schema(
        request=ApprovalInputSerializer,
        responses={
            200: ApprovalSerializer,
            409: OpenApiResponse(
                description="approval_decided: already answered otherwise, expired, or its reply ended"
            ),
        },
        parameters=[SESSION_ID, CALL_ID],
        summary="Approve or deny a tool call that waits (tool.approval_requested)",
        description=(
            "The reply goes on at once: an approved call runs (with the edited arguments, if any), a "
            "denied one is given to the model as the tool's result (status blocked, error "
            "approval_denied). The same answer sent again returns the same body; a different answer, "
            "or one after the approval expired or its reply ended: 409 approval_decided. Another "
            "member's or tenant's session: 404. An admin or staff answering for the user who started "
            "the chat: 403 approval_not_yours unless SOMA_APPROVAL_BY_STAFF is on. Events: "
            "tool.approval_requested (data: call_id, request_id, tool_name, args, reason, expires_at, "
            "args_editable) and tool.approval_decided (data: call_id, request_id, tool_name, decision "
            "approved|denied|expired, decided_by, args, always)."
        ),
    )
    def post(self, request: Request, session_id: str, call_id: str) -> Response:
        body = approval_frame_answer(
            principal=principal_of(request), session_id=session_id, call_id=call_id, data=request.data
        )
        return Response(body)
