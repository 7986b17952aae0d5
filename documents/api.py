"""``/v1/collections`` and ``/v1/collections/{id}/documents[/{doc}[/file]]``: thin views over the services."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, OpenApiTypes, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from documents import kinds
from documents.conf import documents_settings
from documents.models import Collection, Document
from documents.selectors import collection_get, collections_visible, document_get, documents_of
from documents.services.collections import (
    collection_create,
    collection_delete,
    document_delete,
    document_upload,
)
from documents.session_access import session_check
from somaagent.errors import Forbidden, PayloadTooLarge, ValidationFailed
from somaagent.file_response import file_response
from somaagent.identity import scopes as sc
from somaagent.identity.authentication import principal_of
from somaagent.identity.principal import Principal
from somaagent.json_input import MultiPartParser
from somaagent.serializers import StrictSerializer, StringField

MULTIPART_OVERHEAD = 64 * 1024
# Shown in the browser (a citation opens the PDF at its page), as this type; HTML and DOCX are saved.
SHOWN_INLINE = {
    kinds.PDF: kinds.PDF,
    "text/plain": "text/plain; charset=utf-8",
    "text/markdown": "text/plain; charset=utf-8",
    "text/x-markdown": "text/plain; charset=utf-8",
    "text/csv": "text/plain; charset=utf-8",
}
LIST_LIMIT = 500
COLLECTION_ID = OpenApiParameter(
    "collection_id", {"type": "string", "format": "uuid"}, OpenApiParameter.PATH, description="another: 404"
)
DOCUMENT_ID = OpenApiParameter(
    "document_id", {"type": "string", "format": "uuid"}, OpenApiParameter.PATH, description="another: 404"
)


class CollectionCreateSerializer(StrictSerializer):
    """A shared collection (tenant admins) or a private one (yours alone)."""

    name = StringField(min_length=1, max_length=200)
    description = StringField(max_length=1000, required=False, allow_blank=True, default="")
    kind = serializers.ChoiceField(
        choices=("shared", "private"), required=False, help_text="default: shared for admins, else private"
    )
    persona_ids = serializers.ListField(
        child=serializers.UUIDField(), required=False, max_length=50, default=list
    )


class ChatFilesCreateSerializer(StrictSerializer):
    session_id = serializers.UUIDField(help_text="the chat whose files these are")
    name = StringField(min_length=1, max_length=200, required=False, default="This chat's files")


class CollectionSerializer(serializers.ModelSerializer):
    collection_id = serializers.UUIDField(source="id", read_only=True)
    kind = serializers.CharField(read_only=True)
    persona_ids = serializers.SerializerMethodField()
    owner = serializers.SerializerMethodField(help_text="its owner's user name; null: shared")

    class Meta:
        model = Collection
        fields = [
            "collection_id",
            "name",
            "description",
            "kind",
            "owner",
            "persona_ids",
            "session_id",
            "created_at",
        ]
        read_only_fields = fields

    def get_persona_ids(self, obj: Collection) -> list[str]:
        return [str(p.pk) for p in obj.personas.all()]

    def get_owner(self, obj: Collection) -> str | None:
        return obj.owner.get_username() if obj.owner is not None else None


class DocumentSerializer(serializers.ModelSerializer):
    document_id = serializers.UUIDField(source="id", read_only=True)
    collection_id = serializers.UUIDField(read_only=True)
    chunks = serializers.IntegerField(source="chunks_count", read_only=True)

    class Meta:
        model = Document
        fields = [
            "document_id",
            "collection_id",
            "filename",
            "content_type",
            "size",
            "sha256",
            "status",
            "reason",
            "pages",
            "chunks",
            "progress",
            "embedding_status",
            "embedding_reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class CollectionListSerializer(serializers.Serializer):
    collections = CollectionSerializer(many=True)


class DocumentListSerializer(serializers.Serializer):
    documents = DocumentSerializer(many=True)


def _may_manage(principal: Principal, collection: Collection) -> None:
    """Shared collections are managed by tenant admins; private ones and chat files by whoever sees them."""
    if collection.kind == "shared" and not principal.is_tenant_admin:
        raise Forbidden("Only a tenant admin can change a shared collection.", code="admin_required")


class CollectionListView(APIView):
    @extend_schema(responses={200: CollectionListSerializer}, summary="The collections you can see")
    def get(self, request: Request) -> Response:
        principal = principal_of(request)
        rows = collections_visible(tenant=principal.tenant, owner=principal.session_owner)
        rows = rows.select_related("owner").prefetch_related("personas")
        rows = rows.order_by("name", "created_at")[:LIST_LIMIT]
        return Response({"collections": CollectionSerializer(rows, many=True).data})

    @extend_schema(
        request=CollectionCreateSerializer,
        responses={201: CollectionSerializer},
        summary="Create a collection: shared (tenant admins) or private (yours alone)",
    )
    def post(self, request: Request) -> Response:
        serializer = CollectionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        v = serializer.validated_data
        principal = principal_of(request)
        kind = v.get("kind") or ("shared" if principal.is_tenant_admin else "private")
        if kind == "shared" and not principal.is_tenant_admin:
            raise Forbidden("Only a tenant admin can create a shared collection.", code="admin_required")
        if kind == "private" and principal.user is None:
            raise Forbidden("An API key has no user to own a private collection.", code="user_required")
        collection = collection_create(
            tenant=principal.tenant,
            name=v["name"],
            description=v.get("description", ""),
            owner=principal.user if kind == "private" else None,
            persona_ids=v.get("persona_ids") or [],
        )
        return Response(CollectionSerializer(collection).data, status=status.HTTP_201_CREATED)


class ChatFilesView(APIView):
    @extend_schema(
        request=ChatFilesCreateSerializer,
        responses={201: CollectionSerializer},
        summary="The collection of a chat's own files (made on first call; the same one after)",
    )
    def post(self, request: Request) -> Response:
        serializer = ChatFilesCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        v = serializer.validated_data
        principal = principal_of(request)
        session_check(principal=principal, session_id=v["session_id"])
        collection = collection_create(
            tenant=principal.tenant, name=v["name"], owner=principal.session_owner, session_id=v["session_id"]
        )
        return Response(CollectionSerializer(collection).data, status=status.HTTP_201_CREATED)


class CollectionDetailView(APIView):
    @extend_schema(
        responses={200: CollectionSerializer}, parameters=[COLLECTION_ID], summary="One collection"
    )
    def get(self, request: Request, collection_id: str) -> Response:
        principal = principal_of(request)
        collection = collection_get(
            tenant=principal.tenant, collection_id=collection_id, owner=principal.session_owner
        )
        return Response(CollectionSerializer(collection).data)

    @extend_schema(
        request=None,
        responses={204: None},
        parameters=[COLLECTION_ID],
        summary="Delete a collection and its documents",
    )
    def delete(self, request: Request, collection_id: str) -> Response:
        principal = principal_of(request)
        collection = collection_get(
            tenant=principal.tenant, collection_id=collection_id, owner=principal.session_owner
        )
        _may_manage(principal, collection)
        collection_delete(collection=collection)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DocumentListView(APIView):
    parser_classes = [MultiPartParser]
    required_scopes = {"POST": sc.ATTACHMENTS_WRITE}

    @extend_schema(
        responses={200: DocumentListSerializer},
        parameters=[COLLECTION_ID],
        summary="The collection's documents, with their ingestion status",
    )
    def get(self, request: Request, collection_id: str) -> Response:
        principal = principal_of(request)
        collection = collection_get(
            tenant=principal.tenant, collection_id=collection_id, owner=principal.session_owner
        )
        rows = documents_of(collection=collection)[:LIST_LIMIT]
        return Response({"documents": DocumentSerializer(rows, many=True).data})

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary", "minLength": 1}},
                "required": ["file"],
                "additionalProperties": False,
            }
        },
        responses={201: DocumentSerializer, 200: DocumentSerializer},
        parameters=[COLLECTION_ID],
        summary="Upload a PDF, DOCX, HTML, Markdown, text or CSV file (200: the same file was already there)",
    )
    def post(self, request: Request, collection_id: str) -> Response:
        max_bytes = documents_settings().max_bytes
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > max_bytes + MULTIPART_OVERHEAD:
            raise _too_large(max_bytes, length)
        principal = principal_of(request)
        collection = collection_get(
            tenant=principal.tenant, collection_id=collection_id, owner=principal.session_owner
        )
        _may_manage(principal, collection)
        data: Any = request.data if hasattr(request.data, "keys") else {}
        unknown = sorted((set(data.keys()) | set(request.FILES.keys())) - {"file"})
        if unknown:
            raise ValidationFailed("Unknown field.", details={name: ["Unknown field."] for name in unknown})
        files = request.FILES.getlist("file")
        if len(files) != 1:
            raise ValidationFailed("Send exactly one file in the 'file' field.", details={"file": "required"})
        upload = files[0]
        if upload.size is not None and upload.size > max_bytes:
            raise _too_large(max_bytes, upload.size)
        document, created = document_upload(
            collection=collection,
            filename=upload.name or "",
            declared_type=upload.content_type,
            content=upload.read(max_bytes + 1),
            max_bytes=max_bytes,
        )
        return Response(
            DocumentSerializer(document).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class DocumentDetailView(APIView):
    @extend_schema(
        responses={200: DocumentSerializer}, parameters=[COLLECTION_ID, DOCUMENT_ID], summary="One document"
    )
    def get(self, request: Request, collection_id: str, document_id: str) -> Response:
        principal = principal_of(request)
        collection = collection_get(
            tenant=principal.tenant, collection_id=collection_id, owner=principal.session_owner
        )
        return Response(DocumentSerializer(document_get(collection=collection, document_id=document_id)).data)

    @extend_schema(
        request=None,
        responses={204: None},
        parameters=[COLLECTION_ID, DOCUMENT_ID],
        summary="Delete a document and every chunk of it",
    )
    def delete(self, request: Request, collection_id: str, document_id: str) -> Response:
        principal = principal_of(request)
        collection = collection_get(
            tenant=principal.tenant, collection_id=collection_id, owner=principal.session_owner
        )
        _may_manage(principal, collection)
        document_delete(document=document_get(collection=collection, document_id=document_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class DocumentFileView(APIView):
    @extend_schema(
        responses={(200, "*/*"): OpenApiResponse(OpenApiTypes.BINARY, description="the uploaded file")},
        parameters=[COLLECTION_ID, DOCUMENT_ID],
        summary="The uploaded file: PDF and text shown in the browser (sandboxed), other types saved",
    )
    def get(self, request: Request, collection_id: str, document_id: str) -> HttpResponse:
        principal = principal_of(request)
        collection = collection_get(
            tenant=principal.tenant, collection_id=collection_id, owner=principal.session_owner
        )
        document = document_get(collection=collection, document_id=document_id, with_content=True)
        shown_as = SHOWN_INLINE.get(document.content_type)
        return file_response(
            bytes(document.content),
            content_type=shown_as or document.content_type,
            filename=document.filename,
            inline=shown_as is not None,
        )


def _too_large(max_bytes: int, size: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The file is larger than {max_bytes} bytes.", details={"max_bytes": max_bytes, "size": size}
    )
