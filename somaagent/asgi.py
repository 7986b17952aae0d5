"""ASGI entry point: HTTP (API, SSE, admin, web chat, static files) and WebSocket."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "somaagent.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from conversations.routing import websocket_urlpatterns  # noqa: E402
from somaagent.ws_auth import WebsocketAuthStack  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Static files (web chat, admin) come from the apps' static/ folders via
        # the staticfiles finders, under ASGI too: no collectstatic, no CDN.
        "http": ASGIStaticFilesHandler(django_asgi_app),
        "websocket": WebsocketAuthStack(URLRouter(websocket_urlpatterns)),
    }
)
