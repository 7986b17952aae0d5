"""WebSocket routes (mounted by somaagent.asgi behind WebsocketAuthStack)."""

from __future__ import annotations

from django.urls import re_path

from conversations.consumers import RejectingConsumer, SessionStreamConsumer

websocket_urlpatterns = [
    re_path(r"^ws/sessions/(?P<session_id>[^/]+)/?$", SessionStreamConsumer.as_asgi()),
    re_path(r"", RejectingConsumer.as_asgi()),  # anything else: 404, not a server error
]
