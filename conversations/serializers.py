"""Request validation and response shapes for the conversation API."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from conversations.models import Session
from somaagent.errors import PayloadTooLarge
from somaagent.json_input import MAX_JSON_DEPTH
from somaagent.openapi import NO_NUL, NOT_BLANK
from somaagent.serializers import StrictSerializer, StringField

MAX_ATTACHMENTS = 10


class StringUUIDField(serializers.UUIDField):
    """A UUID given as a string; DRF's field also takes integers (42 -> 00000000-…-2a)."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


@extend_schema_field(
    {
        "type": "string",
        "minLength": 1,
        "maxLength": settings.SOMA.max_message_chars,
        "pattern": NOT_BLANK,
        "description": "not only white space; longer than the limit: 413",
    }
)
class MessageField(StringField):
    """The message: kept as written (not trimmed), refused when only white space."""


# Metadata as the code takes it: any JSON object whose strings and keys hold no NUL (the
# JsonValue component), nested at most MAX_JSON_DEPTH levels with the body, at most
# SOMA_MAX_METADATA_BYTES serialized (else 413).
@extend_schema_field(
    {
        "type": "object",
        "propertyNames": {"pattern": NO_NUL},
        "additionalProperties": {"$ref": "#/components/schemas/JsonValue"},
        "description": (
            f"any JSON object: no NUL in its strings or keys, at most {MAX_JSON_DEPTH} levels deep "
            "with the body; larger than SOMA_MAX_METADATA_BYTES: 413"
        ),
    }
)
class MetadataField(serializers.DictField):
    pass


@extend_schema_field(
    {
        "type": "string",
        "description": (
            "the event of the session (usually a reply) the message follows, starting a branch there "
            'if it has other children; "root": a new first message (edit of the first one); absent: '
            "after the session's newest event. An event of another session (or, without session_id, "
            "any event): 404"
        ),
        "oneOf": [{"format": "uuid"}, {"enum": ["root"]}],
    }
)
class ParentEventField(serializers.Field):
    """An event id (a UUID as a string) or ``"root"``."""

    default_error_messages = {"invalid": 'Must be an event id (a UUID) or "root".'}

    def to_internal_value(self, data: Any) -> Any:
        if data == "root":
            return data
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            return uuid.UUID(data)
        except ValueError:
            self.fail("invalid")

    def to_representation(self, value: Any) -> Any:
        return str(value)


class MessageInSerializer(StrictSerializer):
    session_id = StringUUIDField(required=False, allow_null=True)
    persona_id = StringUUIDField(required=False, allow_null=True)
    message = MessageField(trim_whitespace=False)
    attachments = serializers.ListField(child=StringUUIDField(), required=False, max_length=MAX_ATTACHMENTS)
    metadata = MetadataField(required=False)
    parent_event_id = ParentEventField(required=False)

    def validate_message(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("The message is empty.")
        limit = settings.SOMA.max_message_chars
        if len(value) > limit:
            raise PayloadTooLarge(
                f"The message is longer than {limit} characters.",
                details={"max_chars": limit, "chars": len(value)},
            )
        if "\x00" in value:
            raise serializers.ValidationError("The message contains a NUL character.")
        return value

    def validate_metadata(self, value: dict[str, Any]) -> dict[str, Any]:
        limit = settings.SOMA.max_metadata_bytes
        if len(json.dumps(value)) > limit:
            raise PayloadTooLarge(f"metadata is larger than {limit} bytes.", details={"max_bytes": limit})
        return value

    def validate_attachments(self, value: list[Any]) -> list[Any]:
        if len(set(value)) != len(value):
            raise serializers.ValidationError("An attachment is listed twice.")
        return value


class MessageAcceptedSerializer(serializers.Serializer):
    session_id = serializers.UUIDField()
    event_id = serializers.UUIDField()
    turn_id = serializers.UUIDField()
    stream = serializers.DictField(child=serializers.CharField())


class SessionSerializer(serializers.ModelSerializer):
    session_id = serializers.UUIDField(source="id", read_only=True)
    persona_id = serializers.UUIDField(allow_null=True, read_only=True)
    last_event_id = serializers.CharField(source="last_seq", read_only=True)

    class Meta:
        model = Session
        fields = [
            "session_id",
            "persona_id",
            "title",
            "metadata",
            "status",
            "created_at",
            "updated_at",
            "last_event_id",
        ]
        read_only_fields = fields


class SessionPageSerializer(serializers.Serializer):
    sessions = SessionSerializer(many=True)
    next_offset = serializers.IntegerField(allow_null=True)


class CancelledSerializer(serializers.Serializer):
    session_id = serializers.UUIDField()
    cancelled_turns = serializers.ListField(child=serializers.UUIDField())


class SessionPatchSerializer(StrictSerializer):
    title = StringField(max_length=200)


class EventSerializer(serializers.Serializer):
    """Documents the SPEC §7 envelope for the OpenAPI schema."""

    id = serializers.CharField()
    event_id = serializers.UUIDField()
    session_id = serializers.UUIDField()
    type = serializers.CharField(
        help_text="user.message, assistant.started, assistant.delta, tool.start, tool.result, "
        "tool.approval_requested (a tool call waits for approval: data call_id, request_id, tool_name, "
        "args, reason, expires_at, args_editable; answer with POST "
        "/v1/sessions/{session_id}/approvals/{call_id}), tool.approval_decided (data call_id, "
        "request_id, tool_name, decision approved|denied|expired, decided_by, args, always), "
        "assistant.final, assistant.error, assistant.cancelled"
    )
    role = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    data = serializers.DictField()  # type: ignore[assignment]
    parent_id = serializers.UUIDField(
        allow_null=True, help_text="the event before this one on its branch; null for a first message"
    )


class EventPageSerializer(serializers.Serializer):
    events = EventSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)
    prev_cursor = serializers.CharField(allow_null=True, required=False)
    leaf = serializers.UUIDField(
        allow_null=True, required=False, help_text="the last event of the branch listed (not with all=1)"
    )
    siblings = serializers.DictField(
        child=serializers.ListField(child=serializers.UUIDField()),
        required=False,
        help_text=(
            'parent event id ("root" for first messages) -> its children, oldest first, for the '
            "parents of this page's events that have more than one: the branches to switch between"
        ),
    )


class FeedbackInputSerializer(StrictSerializer):
    rating = serializers.ChoiceField(choices=["up", "down"])
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    tags = serializers.ListField(
        child=serializers.CharField(max_length=40), required=False, max_length=10, default=list
    )


class FeedbackSerializer(serializers.Serializer):
    event_id = serializers.UUIDField(source="event.event_id")
    rating = serializers.CharField()
    comment = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    updated_at = serializers.DateTimeField()


class FeedbackListSerializer(serializers.Serializer):
    feedback = FeedbackSerializer(many=True)


class ShareCreateSerializer(StrictSerializer):
    up_to_event_id = serializers.UUIDField(required=False)
