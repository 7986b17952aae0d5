"""ASGI entry point: HTTP (API, SSE, admin, web chat) and WebSocket."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "somaagent.settings")
# Requests run in short-lived threads here: pool database connections (settings.py).
os.environ.setdefault("SOMA_DB_POOL", "1")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

application = ProtocolTypeRouter({"http": django_asgi_app})
