"""The public page of a share link: a read-only snapshot of a chat, no login, not indexed."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from conversations.models import EventType
from conversations.services.shares import share_open
from somaagent.errors import NotFound


def _guarded(response: HttpResponse) -> HttpResponse:
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Cache-Control"] = "private, no-store"  # a revoked link must not live on in caches
    response["Referrer-Policy"] = "no-referrer"
    response["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    )
    return response


@require_GET
def shared_chat(request: HttpRequest, token: str) -> HttpResponse:
    try:
        link, events = share_open(token=token)
    except NotFound:
        page = render(request, "conversations/share_gone.html", status=404)
        return _guarded(page)
    messages = [
        {
            "mine": e.type == EventType.USER_MESSAGE,
            "text": str(e.payload.get("message", "")),
            "model": str(e.payload.get("model") or ""),
        }
        for e in events
    ]
    context = {"title": link.session.title or "Shared chat", "messages": messages}
    return _guarded(render(request, "conversations/share.html", context))
