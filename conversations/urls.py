from django.urls import path

from conversations import (
    api,
    attachments_api,
    branch_api,
    export_api,
    feedback_api,
    search_api,
    share_api,
    sse,
)
from conversations.openai_front import views as openai_views

urlpatterns = [
    path("session/message", api.SessionMessageView.as_view(), name="session-message"),
    path("sessions", api.SessionListView.as_view(), name="session-list"),
    path("sessions/<str:session_id>", api.SessionDetailView.as_view(), name="session-detail"),
    path("sessions/<str:session_id>/events", api.SessionEventsView.as_view(), name="session-events"),
    path("sessions/<str:session_id>/stream", sse.session_stream, name="session-stream"),
    path("sessions/<str:session_id>/cancel", api.SessionCancelView.as_view(), name="session-cancel"),
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
    # OpenAI-compatible front door (conversations/openai_front)
    path("chat/completions", openai_views.chat_completions, name="openai-chat-completions"),
    path("models", openai_views.models, name="openai-models"),
]
