"""The web chat's pages: the chat itself and its own login; the page talks to the API and WebSocket."""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseForbidden,
    HttpResponseRedirect,
)
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

from documents.conf import documents_settings
from documents.kinds import EXTENSIONS
from somaagent.errors import Forbidden
from somaagent.identity.login_throttle import ThrottledLoginMixin
from somaagent.identity.oidc.forms import ChatAuthenticationForm
from somaagent.identity.oidc.views import provider_logout_url, sign_in_choices
from somaagent.identity.principal import principal_for_user
from somaagent.upload_limits import upload_limits


def content_security_policy(request: HttpRequest) -> str:
    """Only our own scripts and styles run; even an injection bug could not load or run anything."""
    host = request.get_host()
    # Logging out of a single sign-on session redirects the logout form to the provider, and
    # Chromium applies form-action to a form's redirects too.
    form_action = f"'self' {settings.SOMA_OIDC.origin}".strip()
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' ws://{host} wss://{host}; object-src 'none'; base-uri 'none'; "
        f"form-action {form_action}; frame-ancestors 'none'"
    )


def _secure(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    response["Content-Security-Policy"] = content_security_policy(request)
    response["Referrer-Policy"] = "same-origin"
    return response


@login_required
@ensure_csrf_cookie
def chat(request: HttpRequest, session_id: uuid.UUID | None = None) -> HttpResponseBase:
    try:
        principal = principal_for_user(request.user)
    except Forbidden as exc:
        return _secure(request, HttpResponseForbidden(exc.message, content_type="text/plain; charset=utf-8"))
    config = {
        "sessionId": str(session_id) if session_id else None,
        "user": request.user.get_username(),
        "tenant": principal.tenant.name,
        "uploads": upload_limits().as_dict(),
        # the Collections panel refuses what the API would (size, file type) before uploading it;
        # a tenant admin also manages the tenant's shared collections (the API decides either way)
        "documents": {"max_bytes": documents_settings().max_bytes, "extensions": sorted(EXTENSIONS)},
        "tenantAdmin": principal.is_tenant_admin,
        "loginUrl": settings.LOGIN_URL,
    }
    context = {"config": config, "user_name": config["user"], "tenant": config["tenant"]}
    return _secure(request, render(request, "webchat/chat.html", context))


class ChatLoginView(ThrottledLoginMixin, auth_views.LoginView):
    template_name = "webchat/login.html"
    authentication_form = ChatAuthenticationForm
    redirect_authenticated_user = True

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        return _secure(request, super().dispatch(request, *args, **kwargs))

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """The provider's button (single sign-on, when configured) beside the password form."""
        context = super().get_context_data(**kwargs)
        context.update(sign_in_choices(self.request, next_url=self.get_redirect_url()))
        return context


class ChatLogoutView(auth_views.LogoutView):
    """Ends the local session; a session from single sign-on then ends at the provider too."""

    next_page = settings.LOGOUT_REDIRECT_URL

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        at_provider = provider_logout_url(request)
        response = super().post(request, *args, **kwargs)
        return HttpResponseRedirect(at_provider) if at_provider else response


@cache
def _favicon_bytes() -> bytes:
    path = finders.find("webchat/favicon.ico")
    if not isinstance(path, str):
        raise FileNotFoundError("webchat/favicon.ico is missing from the static files")
    with open(path, "rb") as icon:
        return icon.read()


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """``/favicon.ico``, which browsers ask for on every page (the admin and API pages too)."""
    response = HttpResponse(_favicon_bytes(), content_type="image/x-icon")
    response["Cache-Control"] = "public, max-age=86400"
    return response
