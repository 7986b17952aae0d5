"""The sign-in routes: start (to the provider), callback (back from it), and the refusal page.

``/oidc/authenticate/?next=…`` redirects to the provider's authorization endpoint
with a fresh ``state``, ``nonce`` and PKCE challenge (S256), kept in the session by
mozilla-django-oidc under the state; ``/oidc/callback/`` takes that entry out
(so a state works once), and the backend finishes the sign-in. Whatever fails —
the provider unreachable, a state unknown or used, any check on the ID token, an
account refused — ends on one page that says why, with the matching status
(400, 403 or 503), and an ``oidc.sign_in_refused`` audit entry. Refusals count
against the client address's login throttle (``somaagent/identity/login_throttle.py``; a
successful sign-in counts nothing): past it, 429 with ``Retry-After`` and no entry,
so a flood of forged callbacks cannot fill the audit log. With
``SOMA_OIDC_ISSUER`` unset both routes answer 404.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from somaagent.audit import Actor, audit_record, client_ip
from somaagent.errors import RateLimited, RateLimitUnavailable, SomaError
from somaagent.identity.login_throttle import address_attempt
from somaagent.identity.oidc.backend import library_setting
from somaagent.identity.oidc.errors import ProviderUnavailable, SignInInvalid, SignInRefused
from somaagent.identity.oidc.provider import provider_metadata
from somaagent.models import AuditLog

logger = logging.getLogger(__name__)

MAX_PROVIDER_ERROR_CHARS = 100


def _enabled() -> None:
    if not settings.SOMA_OIDC.enabled:
        raise Http404("Single sign-on is not configured.")


def _throttled(request: HttpRequest) -> RateLimited | None:
    """A refused attempt counts against the address's login throttle; past it, no more entries."""
    try:
        address_attempt(request=request)
    except RateLimited as exc:
        return exc
    except RateLimitUnavailable:
        logger.warning("oidc refusal not counted: the rate limiter is unavailable; audited anyway")
    return None


def sign_in_refused(request: HttpRequest, exc: SomaError) -> HttpResponse:
    """The refusal page and its audit entry; a flood of refusals from one address is cut off
    at the login throttle (429, no more entries), so it cannot fill the audit log."""
    throttled = _throttled(request)
    if throttled is not None:
        exc = throttled
    reason = str(exc.details.get("reason", exc.code))
    subject = str(exc.details.get("subject", ""))
    logger.warning("oidc sign-in refused: %s (%s)", reason, exc.message)
    if throttled is None:
        audit_record(
            actor=Actor(label=f"oidc:{subject}" if subject else "anonymous", ip=client_ip(request)),
            action=AuditLog.Action.OIDC_SIGN_IN_REFUSED,
            target=f"oidc:{subject}" if subject else "",
            details={**exc.details, "reason": reason, "message": exc.message},
        )
    context = {
        "message": exc.message,
        "reason": reason,
        "provider": settings.SOMA_OIDC.provider_name,
        "login_url": settings.LOGIN_URL,
        "retry_url": reverse("oidc:authenticate"),
    }
    response = render(request, "oidc/refused.html", context, status=exc.status_code)
    if isinstance(exc, ProviderUnavailable | RateLimited):
        response["Retry-After"] = str(exc.retry_after)
    response["Cache-Control"] = "no-store"
    return response


class OidcStartView(OIDCAuthenticationRequestView):
    """GET: off to the provider (discovery first; if it fails, the refusal page, not a redirect)."""

    get_settings = staticmethod(library_setting)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Skip the library's __init__, which reads a static authorization endpoint.
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponseBase:
        _enabled()
        try:
            self.OIDC_OP_AUTH_ENDPOINT = provider_metadata().authorization_endpoint
        except ProviderUnavailable as exc:
            return sign_in_refused(request, exc)
        self.OIDC_RP_CLIENT_ID = settings.SOMA_OIDC.client_id
        return super().get(request)


class OidcCallbackView(OIDCAuthenticationCallbackView):
    get_settings = staticmethod(library_setting)

    def get(self, request: HttpRequest) -> HttpResponseBase:
        _enabled()
        try:
            return super().get(request)
        except SuspiciousOperation:
            return sign_in_refused(request, _unknown_state())
        except (SignInRefused, SignInInvalid, ProviderUnavailable) as exc:
            return sign_in_refused(request, exc)

    def login_failure(self) -> HttpResponse:
        error = self.request.GET.get("error")
        if error:
            description = self.request.GET.get("error_description", "")
            return sign_in_refused(
                self.request,
                SignInRefused(
                    f"The identity provider refused the sign-in: {error[:MAX_PROVIDER_ERROR_CHARS]}"
                    + (f" ({description[:200]})" if description else ""),
                    details={"reason": "provider_error", "provider_error": error[:MAX_PROVIDER_ERROR_CHARS]},
                ),
            )
        return sign_in_refused(self.request, _unknown_state())


def _unknown_state() -> SignInInvalid:
    return SignInInvalid(
        "This sign-in link is unknown, expired or was already used. Start again from the login page.",
        details={"reason": "unknown_state"},
    )


def provider_logout_url(request: HttpRequest) -> str | None:
    """Where to send the browser to end the provider's session too (RP-initiated logout), or None.

    Only for a session that signed in through the provider, and only when the provider
    announces an ``end_session_endpoint``. Call before the local logout (it reads the session)."""
    config = settings.SOMA_OIDC
    id_token = request.session.get("oidc_id_token") if hasattr(request, "session") else None
    if not config.enabled or not id_token:
        return None
    try:
        endpoint = provider_metadata().end_session_endpoint
    except ProviderUnavailable:
        logger.warning("oidc logout: the provider is unreachable; ending the local session only")
        return None
    if not endpoint:
        return None
    query = urlencode(
        {
            "id_token_hint": id_token,
            "client_id": config.client_id,
            "post_logout_redirect_uri": request.build_absolute_uri(settings.LOGOUT_REDIRECT_URL),
        }
    )
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


def sign_in_choices(request: HttpRequest, *, next_url: str = "") -> dict[str, Any]:
    """What a login page offers: the provider's button (when configured) and local passwords."""
    config = settings.SOMA_OIDC
    button = None
    if config.enabled:
        url = reverse("oidc:authenticate")
        if next_url:
            url = f"{url}?{urlencode({'next': next_url})}"
        button = {"label": config.button_label, "url": url}
    return {"oidc_button": button, "local_login": config.local_login}
