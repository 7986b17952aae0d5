from django.urls import path

from documents import api

urlpatterns = [
    path("collections", api.CollectionListView.as_view(), name="collection-list"),
    path("chat-files", api.ChatFilesView.as_view(), name="chat-files"),
    path("collections/<str:collection_id>", api.CollectionDetailView.as_view(), name="collection-detail"),
    path("collections/<str:collection_id>/documents", api.DocumentListView.as_view(), name="document-list"),
    path(
        "collections/<str:collection_id>/documents/<str:document_id>",
        api.DocumentDetailView.as_view(),
        name="document-detail",
    ),
    path(
        "collections/<str:collection_id>/documents/<str:document_id>/file",
        api.DocumentFileView.as_view(),
        name="document-file",
    ),
]
