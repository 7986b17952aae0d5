"""``POST /v1/attachments`` (multipart) and ``GET /v1/attachments/{id}[/content]``: thin views."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, OpenApiTypes, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations.models import Attachment
from conversations.selectors import attachment_get
from conversations.services.attachments import attachment_create, too_large
from conversations.turn.admission import attachment_upload_authorize
from somaagent.errors import PolicyDenied, ValidationFailed
from somaagent.file_response import file_response
from somaagent.identity import scopes as sc
from somaagent.identity.authentication import principal_of
from somaagent.json_input import MultiPartParser
from somaagent.upload_limits import upload_limits

# Room for the multipart envelope around the file when checking Content-Length.
MULTIPART_OVERHEAD = 64 * 1024
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
UPLOAD_FIELDS = frozenset({"file", "session_id"})
FLAG_VALUES = ("0", "1", "false", "true")
ATTACHMENT_ID = OpenApiParameter(
    "attachment_id", {"type": "string", "format": "uuid"}, OpenApiParameter.PATH, description="another: 404"
)
# The stored bytes come back with the stored type: any the uploads setting allowed.
BYTES = OpenApiResponse(OpenApiTypes.BINARY, description="the file's bytes, with its stored type")


def _flag(request: Request, name: str) -> bool:
    """A 0/1/false/true query flag; anything else is 400 (not silently false)."""
    raw = request.query_params.get(name)
    if raw is None:
        return False
    if raw not in FLAG_VALUES:
        raise ValidationFailed(f"{name} must be one of {', '.join(FLAG_VALUES)}.", details={name: raw[:40]})
    return raw in ("1", "true")


def _flag_parameter(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, {"type": "string", "enum": list(FLAG_VALUES)}, description=description)


class AttachmentSerializer(serializers.ModelSerializer):
    attachment_id = serializers.UUIDField(source="id", read_only=True)
    session_id = serializers.UUIDField(allow_null=True, read_only=True)
    content_url = serializers.SerializerMethodField()

    class Meta:
        model = Attachment
        fields = [
            "attachment_id",
            "session_id",
            "filename",
            "mime",
            "size",
            "sha256",
            "status",
            "quarantine_reason",
            "created_at",
            "content_url",
        ]
        read_only_fields = fields

    def get_content_url(self, obj: Attachment) -> str:
        return f"/v1/attachments/{obj.pk}/content"


class AttachmentUploadView(APIView):
    parser_classes = [MultiPartParser]
    required_scopes = {"POST": sc.ATTACHMENTS_WRITE}

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {
                    "file": {"type": "string", "format": "binary", "minLength": 1},
                    "session_id": {  # empty: no session, as when left out
                        "anyOf": [{"type": "string", "format": "uuid"}, {"type": "string", "maxLength": 0}]
                    },
                },
                "required": ["file"],
                "additionalProperties": False,
            }
        },
        responses={201: AttachmentSerializer},
        summary="Upload a file (limits and allowed types from the 'uploads' UI setting)",
    )
    def post(self, request: Request) -> Response:
        limits = upload_limits()
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > limits.max_bytes + MULTIPART_OVERHEAD:
            raise too_large(limits, length)
        data: Any = request.data if hasattr(request.data, "keys") else {}
        unknown = sorted((set(data.keys()) | set(request.FILES.keys())) - UPLOAD_FIELDS)
        if unknown:
            raise ValidationFailed("Unknown field.", details={name: ["Unknown field."] for name in unknown})
        repeated = sorted(k for k in data if len(data.getlist(k)) > 1)
        if repeated:  # the last one would win silently
            raise ValidationFailed("Send each field once.", details={k: ["Sent twice."] for k in repeated})
        files = request.FILES.getlist("file")
        if len(files) != 1:
            raise ValidationFailed("Send exactly one file in the 'file' field.", details={"file": "required"})
        upload = files[0]
        if upload.size is not None and upload.size > limits.max_bytes:
            raise too_large(limits, upload.size)
        attachment_upload_authorize(  # attachments.upload policy (403) before anything is stored
            principal=principal_of(request),
            mime=upload.content_type or "",
            size=upload.size or 0,
            session_id=data.get("session_id"),
        )
        attachment = attachment_create(
            tenant=principal_of(request).tenant,
            filename=upload.name or "",
            declared_mime=upload.content_type,
            content=upload.read(limits.max_bytes + 1),
            session_id=data.get("session_id"),
            limits=limits,
            owner=principal_of(request).session_owner,
        )
        return Response(AttachmentSerializer(attachment).data, status=status.HTTP_201_CREATED)


def content_response(attachment: Attachment, *, inline: bool = False) -> HttpResponse:
    """The stored bytes with the stored type, never rendered by the browser as a page."""
    return file_response(
        bytes(attachment.content),
        content_type=attachment.mime,
        filename=attachment.filename,
        inline=inline and attachment.mime in INLINE_TYPES,
    )


class AttachmentDetailView(APIView):
    @extend_schema(
        responses={(200, "application/json"): AttachmentSerializer, (200, "*/*"): BYTES},
        parameters=[ATTACHMENT_ID, _flag_parameter("download", "1 or true: the file's bytes instead")],
        summary="An attachment's metadata (or its bytes with ?download=1)",
    )
    def get(self, request: Request, attachment_id: str) -> HttpResponse:
        if _flag(request, "download"):
            return _download(request, attachment_id)
        attachment = attachment_get(tenant=principal_of(request).tenant, attachment_id=attachment_id)
        return Response(AttachmentSerializer(attachment).data)


class AttachmentContentView(APIView):
    @extend_schema(
        responses={(200, "*/*"): BYTES},
        parameters=[ATTACHMENT_ID, _flag_parameter("inline", "1 or true: show images inline")],
        summary="An attachment's bytes (quarantined files: 403)",
    )
    def get(self, request: Request, attachment_id: str) -> HttpResponse:
        return _download(request, attachment_id)


def _download(request: Request, attachment_id: str) -> HttpResponse:
    inline = _flag(request, "inline")
    attachment = attachment_get(
        tenant=principal_of(request).tenant, attachment_id=attachment_id, with_content=True
    )
    if attachment.status != Attachment.Status.CLEAN:
        raise PolicyDenied(
            "This file is quarantined; staff can review it in admin.",
            code="attachment_quarantined",
            details={"reason": attachment.quarantine_reason},
        )
    return content_response(attachment, inline=inline)
