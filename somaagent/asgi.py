"""ASGI entry point: HTTP (API, SSE, admin, web chat, static files) and WebSocket."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "somaagent.settings")

import django

django.setup(set_prefix=False)  # as django.core.asgi.get_asgi_application does

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from conversations.attachments_api import MULTIPART_OVERHEAD  # noqa: E402
from conversations.ws_urls import websocket_urlpatterns  # noqa: E402
from documents.api import MULTIPART_OVERHEAD as DOCUMENT_OVERHEAD  # noqa: E402
from documents.conf import documents_settings  # noqa: E402
from somaagent.identity.http_caller import http_caller_known  # noqa: E402
from somaagent.identity.ws_auth import WebsocketAuthStack  # noqa: E402
from somaagent.policy import policy_port  # noqa: E402
from somaagent.project.asgi_handler import OneHopASGIHandler  # noqa: E402
from somaagent.project.body_limit import BodyLimit  # noqa: E402

# Sync views (the API, admin, pages, the SSE stream's opening) in one thread hop each; async views
# (the OpenAI door, /readyz) as Django runs them.
django_asgi_app = OneHopASGIHandler(threads=settings.SOMA.web_threads)

application = ProtocolTypeRouter(
    {
        # Bodies over the limit are refused (413) as they stream in, before Django reads them,
        # authenticates or spools them to disk; uploads have their own, larger limit, for
        # callers whose credentials check out before the body is read.
        "http": BodyLimit(
            # Static files (web chat, admin) come from the apps' static/ folders via
            # the staticfiles finders, under ASGI too: no collectstatic, no CDN.
            ASGIStaticFilesHandler(django_asgi_app),
            max_bytes=settings.SOMA.max_request_bytes,
            path_limits={
                "/v1/attachments": settings.SOMA.max_upload_bytes + MULTIPART_OVERHEAD,
                "/v1/import": settings.SOMA.max_import_bytes,
            },
            pattern_limits={
                r"/v1/collections/[^/]+/documents": documents_settings().max_bytes + DOCUMENT_OVERHEAD,
            },
            caller_known=http_caller_known,
        ),
        "websocket": WebsocketAuthStack(URLRouter(websocket_urlpatterns)),
    }
)

# The policy engine compiles its modules once per process (about 25 ms): now, so that a broken
# policy file stops start-up and the first burst of requests does not wait for it.
policy_port()
