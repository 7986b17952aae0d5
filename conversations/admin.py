"""Admin for sessions (events inline), events, turns, attachments."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from conversations.models import (
    Attachment,
    Session,
    SessionAlias,
    SessionEvent,
    SessionSummary,
    Turn,
    TurnAnalysis,
)
from conversations.services.sessions import session_delete
from somaagent.admin import ReadOnlyAdmin


class EventInline(admin.TabularInline):
    model = SessionEvent
    extra = 0
    can_delete = False
    fields = ("seq", "type", "role", "occurred_at", "payload")
    readonly_fields = fields
    ordering = ["seq"]
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ["id", "title", "tenant", "persona", "status", "last_seq", "updated_at"]
    list_filter = ["status", "tenant"]
    search_fields = ["id", "title"]
    date_hierarchy = "created_at"
    readonly_fields = ["id", "tenant", "last_seq", "created_at", "updated_at"]
    fields = [
        "id",
        "tenant",
        "persona",
        "title",
        "status",
        "metadata",
        "last_seq",
        "created_at",
        "updated_at",
    ]
    inlines = [EventInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: Session) -> None:
        session_delete(session=obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for session in queryset:
            session_delete(session=session)


@admin.register(SessionEvent)
class SessionEventAdmin(ReadOnlyAdmin):
    list_display = ["session", "seq", "type", "role", "occurred_at"]
    list_filter = ["type", "role"]
    search_fields = ["event_id", "session__id"]
    date_hierarchy = "occurred_at"
    list_select_related = ["session"]


class TurnAnalysisInline(admin.StackedInline):
    model = TurnAnalysis
    can_delete = False
    extra = 0
    fields = (
        "intent",
        "sentiment",
        "tags",
        "complexity",
        "chars",
        "escalated",
        "escalation_reason",
        "escalation_detail",
        "profile",
        "attempts",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Turn)
class TurnAdmin(ReadOnlyAdmin):
    list_display = ["id", "session", "status", "attempts", "model", "error_code", "created_at", "finished_at"]
    list_filter = ["status", "error_code", "tenant"]
    search_fields = ["id", "session__id"]
    date_hierarchy = "created_at"
    inlines = [TurnAnalysisInline]


@admin.register(TurnAnalysis)
class TurnAnalysisAdmin(ReadOnlyAdmin):
    """Each turn's local analysis, escalation decision and the model that answered."""

    list_display = [
        "turn",
        "intent",
        "sentiment",
        "tags",
        "complexity",
        "escalated",
        "escalation_reason",
        "profile",
        "created_at",
    ]
    list_filter = ["intent", "sentiment", "escalated", "escalation_reason"]
    search_fields = ["turn__id", "turn__session__id", "profile"]
    date_hierarchy = "created_at"


@admin.register(SessionSummary)
class SessionSummaryAdmin(ReadOnlyAdmin):
    list_display = ["session", "covered_seq", "messages", "model", "updated_at"]
    search_fields = ["session__id", "text"]


@admin.register(SessionAlias)
class SessionAliasAdmin(ReadOnlyAdmin):
    list_display = ["key", "tenant", "session", "created_at"]
    list_filter = ["tenant"]
    search_fields = ["key", "session__id"]


@admin.register(Attachment)
class AttachmentAdmin(admin.ModelAdmin):
    list_display = ["filename", "tenant", "session", "mime", "size", "status", "created_at"]
    list_filter = ["status", "mime", "tenant"]
    search_fields = ["filename", "sha256", "id"]
    readonly_fields = ["id", "tenant", "filename", "mime", "size", "sha256", "created_at"]
    exclude = ["content"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
