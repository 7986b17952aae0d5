"""Admin for sessions (events inline), events, turns, tool approvals, attachments."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from conversations.attachments_api import content_response
from conversations.models import (
    Attachment,
    Feedback,
    Session,
    SessionAlias,
    SessionEvent,
    SessionSummary,
    ShareLink,
    ToolApproval,
    Turn,
    TurnAnalysis,
)
from conversations.selectors import parse_uuid
from conversations.services.attachments import attachment_set_status
from conversations.services.sessions import session_delete
from conversations.services.shares import shares_revoke
from somaagent.admin_base import ReadOnlyAdmin, may


class EventInline(admin.TabularInline):
    model = SessionEvent
    extra = 0
    can_delete = False
    # parent_id: the event before it on its branch (an edit or another reply starts a branch)
    fields = ("seq", "type", "role", "parent_id", "occurred_at", "payload")
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
    readonly_fields = ["id", "tenant", "title_automatic", "last_seq", "created_at", "updated_at"]
    fields = [
        "id",
        "tenant",
        "persona",
        "title",
        "title_automatic",
        "status",
        "metadata",
        "last_seq",
        "created_at",
        "updated_at",
    ]
    inlines = [EventInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Session, form: Any, change: bool) -> None:
        if "title" in form.changed_data:
            obj.title_automatic = False  # staff chose it: the model's proposal must not replace it
        super().save_model(request, obj, form, change)

    def delete_model(self, request: HttpRequest, obj: Session) -> None:
        session_delete(session=obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for session in queryset:
            session_delete(session=session)


@admin.register(SessionEvent)
class SessionEventAdmin(ReadOnlyAdmin):
    list_display = ["session", "seq", "type", "role", "event_id", "parent_id", "occurred_at"]
    list_filter = ["type", "role"]
    search_fields = ["event_id", "session__id", "parent_id"]
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
    list_display = [
        "id",
        "session",
        "status",
        "awaiting_approval",
        "attempts",
        "model",
        "error_code",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "awaiting_approval", "error_code", "tenant"]
    search_fields = ["id", "session__id"]
    date_hierarchy = "created_at"
    inlines = [TurnAnalysisInline]


@admin.register(ToolApproval)
class ToolApprovalAdmin(ReadOnlyAdmin):
    """Tool calls that waited for a person's approval, and the answers (docs/approvals.md)."""

    list_display = [
        "call_id",
        "tool",
        "status",
        "session",
        "decided_by",
        "decided_at",
        "expires_at",
        "always",
    ]
    list_filter = ["status", "tool", "always", "tenant"]
    search_fields = ["call_id", "session__id", "turn__id", "decided_by"]
    date_hierarchy = "created_at"


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
    list_display = ["filename", "tenant", "session", "mime", "size", "status", "created_at", "download_link"]
    list_filter = [
        "status",
        "mime",
        "tenant",
        ("session", admin.EmptyFieldListFilter),
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["filename", "sha256", "id"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "id",
        "tenant",
        "session",
        "filename",
        "mime",
        "size",
        "sha256",
        "status",
        "quarantine_reason",
        "created_at",
        "download_link",
    ]
    exclude = ["content"]
    actions = ["quarantine", "release"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Attachment]:
        return super().get_queryset(request).defer("content")

    def get_urls(self) -> list[URLPattern]:
        download = path(
            "<path:object_id>/download/",
            self.admin_site.admin_view(self.download_view),
            name="conversations_attachment_download",
        )
        return [download, *super().get_urls()]

    def download_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Staff may fetch quarantined files too, always as a download, never rendered."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        attachment = Attachment.objects.filter(pk=parse_uuid(object_id, what="attachment")).first()
        if attachment is None:
            raise Http404("No such attachment.")
        return content_response(attachment)

    @admin.display(description="file")
    def download_link(self, obj: Attachment) -> str:
        url = reverse("admin:conversations_attachment_download", args=[obj.pk])
        return format_html('<a href="{}">download</a>', url)

    def has_quarantine_permission(self, request: HttpRequest) -> bool:
        return may(request, self, "quarantine")

    @admin.action(description="Quarantine selected attachments", permissions=["quarantine"])
    def quarantine(self, request: HttpRequest, queryset: QuerySet[Attachment]) -> None:
        for attachment in queryset:
            attachment_set_status(
                attachment=attachment, status=Attachment.Status.QUARANTINED, reason="Quarantined by staff."
            )
        self.message_user(request, f"Quarantined {queryset.count()} attachment(s).")

    @admin.action(description="Release selected attachments from quarantine", permissions=["quarantine"])
    def release(self, request: HttpRequest, queryset: QuerySet[Attachment]) -> None:
        for attachment in queryset:
            attachment_set_status(attachment=attachment, status=Attachment.Status.CLEAN)
        self.message_user(request, f"Released {queryset.count()} attachment(s).")


from conversations.llm import admin as llm_admin  # noqa: E402,F401  (model profiles)


@admin.register(Feedback)
class FeedbackAdmin(ReadOnlyAdmin):
    """Readers' thumbs up and down on replies, to find what the models get wrong."""

    list_display = [
        "updated_at",
        "rating",
        "model",
        "persona",
        "tenant",
        "author",
        "comment_start",
        "session",
    ]
    list_filter = ["rating", "model", "persona", "tenant"]
    search_fields = ["comment", "session__id", "author"]
    date_hierarchy = "updated_at"
    list_select_related = ["persona", "tenant"]

    @admin.display(description="comment")
    def comment_start(self, obj: Feedback) -> str:
        return obj.comment if len(obj.comment) <= 80 else obj.comment[:79] + "…"


@admin.register(ShareLink)
class ShareLinkAdmin(ReadOnlyAdmin):
    """Read-only links to chats: who shared which chat, and revoking one (it then answers 404).
    Sharing is turned off for a whole tenant with the ``share_links`` feature flag."""

    list_display = ["created_at", "tenant", "author", "session", "up_to_seq", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "tenant"]
    search_fields = ["author", "session__id", "session__title"]
    date_hierarchy = "created_at"
    list_select_related = ["tenant", "session"]
    exclude = ["token"]  # the link itself is the secret: staff revoke, they do not open
    actions = ["revoke"]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Revoke selected links", permissions=["delete"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ShareLink]) -> None:
        revoked = shares_revoke(queryset)
        self.message_user(request, f"Revoked {revoked} link(s).")


from conversations.schedules import admin as schedules_admin  # noqa: E402,F401  (registers the schedule admins)
from conversations.webhooks import admin as webhooks_admin  # noqa: E402,F401  (registers the webhook admins)
