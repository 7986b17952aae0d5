"""Django authentication backends: the identity provider's code flow, and local passwords.

``OidcBackend`` is mozilla-django-oidc's backend with its network and trust
decisions replaced: endpoints come from discovery (``somaagent.identity.oidc.provider``),
the ID token gets every check (``somaagent.identity.oidc.tokens``; the library's own check
skips ``aud`` and ``iss``), and the user is found by issuer + ``sub``
(``somaagent.identity.oidc.accounts``; the library's default matches e-mail addresses).
It answers only the callback view, which passes the nonce and PKCE verifier it
kept in the session; anything that fails raises, so the view can say why.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest
from django.urls import reverse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from somaagent.audit import client_ip
from somaagent.identity.oidc.accounts import oidc_sign_in
from somaagent.identity.oidc.errors import SignInInvalid, SignInRefused
from somaagent.identity.oidc.provider import ProviderTokenError, token_exchange
from somaagent.identity.oidc.tokens import id_token_claims

CALLBACK_URL_NAME = "oidc:callback"
MAX_CODE_CHARS = 2048


def library_setting(name: str, *default: Any) -> Any:
    """The settings mozilla-django-oidc asks for, from ``SOMA_OIDC`` (not Django settings)."""
    config = settings.SOMA_OIDC
    values = {
        "OIDC_RP_CLIENT_ID": config.client_id,
        "OIDC_RP_SCOPES": config.scopes,
        "OIDC_USE_NONCE": True,
        "OIDC_USE_PKCE": True,
        "OIDC_PKCE_CODE_CHALLENGE_METHOD": "S256",
        "OIDC_AUTHENTICATION_CALLBACK_URL": CALLBACK_URL_NAME,
        "OIDC_STORE_ID_TOKEN": True,  # the hint for RP-initiated logout
        "OIDC_STORE_ACCESS_TOKEN": False,
        "OIDC_REDIRECT_FIELD_NAME": "next",
        "LOGIN_REDIRECT_URL": settings.LOGIN_REDIRECT_URL,
        "LOGIN_REDIRECT_URL_FAILURE": settings.LOGIN_URL,
    }
    if name in values:
        return values[name]
    return getattr(settings, name, *default)


def callback_url(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse(CALLBACK_URL_NAME))


class OidcBackend(OIDCAuthenticationBackend):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The library reads static endpoint settings here; ours come from discovery, later.
        self.UserModel = get_user_model()

    get_settings = staticmethod(library_setting)

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> Any:
        nonce, verifier = kwargs.get("nonce"), kwargs.get("code_verifier")
        if request is None or not nonce or not verifier or not settings.SOMA_OIDC.enabled:
            return None  # not our callback (a password login, an API token)
        self.request = request
        code = request.GET.get("code", "")
        if not code or len(code) > MAX_CODE_CHARS:
            raise SignInInvalid("The sign-in callback has no usable code.", details={"reason": "no_code"})
        try:
            tokens = token_exchange(code=code, redirect_uri=callback_url(request), code_verifier=verifier)
        except ProviderTokenError as exc:
            raise SignInRefused(
                "The identity provider did not accept this sign-in's code (used, expired or not ours).",
                details={"reason": "code_refused", "provider_error": str(exc)[:100]},
            ) from None
        claims = id_token_claims(id_token=tokens.get("id_token"), nonce=nonce)
        user = oidc_sign_in(claims=claims, ip=client_ip(request))
        self.store_tokens(tokens.get("access_token"), tokens.get("id_token"))
        return user

    def get_user(self, user_id: Any) -> Any:
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None


class LocalPasswordBackend(ModelBackend):
    """Django's password login, unless ``SOMA_LOCAL_LOGIN=0``: then superusers only (break-glass).

    It covers every password path (web chat, admin, ``/v1/auth/token``) and the
    sessions they made: a non-superuser's password session stops working too."""

    def user_can_authenticate(self, user: Any) -> bool:
        if not super().user_can_authenticate(user):
            return False
        return bool(settings.SOMA_OIDC.local_login or getattr(user, "is_superuser", False))
