from django.urls import path

from conversations import (
    api,
    approvals_api,
    attachments_api,
    branch_api,
    export_api,
    feedback_api,
    search_api,
    share_api,
    sse,
)
from conversations.openai_front import views as openai_views
from conversations.schedules import api as schedules_api
from conversations.usage_api import UsageView
from conversations.webhooks import api as webhooks_api

urlpatterns = [
    path("session/message", api.SessionMessageView.as_view(), name="session-message"),
    path("sessions", api.SessionListView.as_view(), name="session-list"),
    path("sessions/<str:session_id>", api.SessionDetailView.as_view(), name="session-detail"),
    path("sessions/<str:session_id>/events", api.SessionEventsView.as_view(), name="session-events"),
    path("sessions/<str:session_id>/stream", sse.session_stream, name="session-stream"),
    path("sessions/<str:session_id>/cancel", api.SessionCancelView.as_view(), name="session-cancel"),
    path(
        "sessions/<str:session_id>/approvals/<str:call_id>",
        approvals_api.ApprovalView.as_view(),
        name="session-approval",
    ),
    path(
        "sessions/<str:session_id>/feedback",
        feedback_api.SessionFeedbackView.as_view(),
        name="session-feedback",
    ),
    path("sessions/<str:session_id>/export", export_api.SessionExportView.as_view(), name="session-export"),
    path("export", export_api.ExportAllView.as_view(), name="export-all"),
    path("import", export_api.ImportView.as_view(), name="import"),
    path("search", search_api.SearchView.as_view(), name="search"),
    path("sessions/<str:session_id>/shares", share_api.SessionShareView.as_view(), name="session-shares"),
    path("shares", share_api.ShareListView.as_view(), name="shares"),
    path("shares/<str:share_id>", share_api.ShareDetailView.as_view(), name="share"),
    path(
        "sessions/<str:session_id>/events/<str:event_id>/feedback",
        feedback_api.FeedbackView.as_view(),
        name="session-event-feedback",
    ),
    path(
        "sessions/<str:session_id>/events/<str:event_id>/regenerate",
        branch_api.RegenerateView.as_view(),
        name="session-event-regenerate",
    ),
    path("attachments", attachments_api.AttachmentUploadView.as_view(), name="attachment-upload"),
    path(
        "attachments/<str:attachment_id>", attachments_api.AttachmentDetailView.as_view(), name="attachment"
    ),
    path(
        "attachments/<str:attachment_id>/content",
        attachments_api.AttachmentContentView.as_view(),
        name="attachment-content",
    ),
    path("usage", UsageView.as_view(), name="usage"),
    path("schedules", schedules_api.ScheduleListView.as_view(), name="schedules"),
    path("schedules/<str:schedule_id>", schedules_api.ScheduleDetailView.as_view(), name="schedule"),
    path("schedules/<str:schedule_id>/run", schedules_api.ScheduleRunView.as_view(), name="schedule-run"),
    path("schedules/<str:schedule_id>/runs", schedules_api.ScheduleRunsView.as_view(), name="schedule-runs"),
    path("webhooks", webhooks_api.WebhookListView.as_view(), name="webhooks"),
    path("webhooks/<str:webhook_id>", webhooks_api.WebhookDetailView.as_view(), name="webhook"),
    path(
        "webhooks/<str:webhook_id>/rotate-secret",
        webhooks_api.WebhookRotateView.as_view(),
        name="webhook-rotate-secret",
    ),
    path(
        "webhooks/<str:webhook_id>/deliveries",
        webhooks_api.WebhookDeliveriesView.as_view(),
        name="webhook-deliveries",
    ),
    # OpenAI-compatible front door (conversations/openai_front)
    path("chat/completions", openai_views.chat_completions, name="openai-chat-completions"),
    path("models", openai_views.models, name="openai-models"),
]
