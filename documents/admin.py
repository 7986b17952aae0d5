"""Admin: collections (with their personas) and documents (status, reason, chunks, whether
their vectors were made); deleting either removes every chunk of it."""

from __future__ import annotations

from django.contrib import admin

from documents.models import Collection, Document

SHOWN = ["filename", "content_type", "size", "status", "reason", "pages", "chunks_count", "created_at"]


class DocumentInline(admin.TabularInline):
    model = Document
    fields = tuple(SHOWN)
    readonly_fields = SHOWN
    extra = 0
    can_delete = True
    show_change_link = True

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "kind", "owner", "session_id", "created_at"]
    list_filter = ["tenant"]
    search_fields = ["name", "=session_id"]
    filter_horizontal = ["personas"]
    readonly_fields = ["session_id", "created_at"]
    list_select_related = ["tenant", "owner"]
    inlines = [DocumentInline]


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = [
        "filename",
        "collection",
        "tenant",
        "status",
        "reason",
        "pages",
        "chunks_count",
        "progress",
        "embedding_status",
        "created_at",
    ]
    list_filter = ["status", "embedding_status", "tenant", "content_type"]
    search_fields = ["filename", "=sha256"]
    exclude = ["content"]
    readonly_fields = [
        "tenant",
        "collection",
        "filename",
        "content_type",
        "sha256",
        "size",
        "status",
        "reason",
        "pages",
        "chunks_count",
        "progress",
        "attempts",
        "embedding_status",
        "embedding_reason",
        "embedding_model",
        "created_at",
        "updated_at",
    ]
    list_select_related = ["tenant", "collection"]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False  # uploads go through the API or the web chat, which queue the ingestion

    def get_queryset(self, request):  # type: ignore[no-untyped-def]
        return super().get_queryset(request).defer("content")
