"""DRF authentication and the permission every API view runs.

``Authorization: Bearer <token>``: a token shaped like an API key
(``soma_…``) is checked as a key, anything else as a JWT access token. Without
the header the web chat's login session is used. The permission then enforces
the key's (or role's) scopes and the per-key rate limit.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from somaagent.errors import Forbidden, Unauthenticated
from somaagent.identity import scopes as sc
from somaagent.identity.apikeys import KEY_PREFIX, api_key_authenticate
from somaagent.identity.jwt_auth import principal_for_access_token
from somaagent.identity.principal import Principal, principal_for_key, principal_for_user
from somaagent.ratelimit import principal_rate_limit

BAD_HEADER = "Use 'Authorization: Bearer <api key or access token>'."


def bearer_token(request: HttpRequest) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise exceptions.AuthenticationFailed(BAD_HEADER)
    return token.strip()


def principal_from_bearer(token: str) -> Principal:
    """The caller behind an API key or a JWT access token; Unauthenticated otherwise."""
    if token.startswith(KEY_PREFIX):
        key = api_key_authenticate(token)
        if key is None:
            raise Unauthenticated("Invalid or revoked API key.")
        return principal_for_key(key)
    return principal_for_access_token(token)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Bearer API keys and JWT access tokens (the name is kept for the settings)."""

    def authenticate(self, request: Request) -> tuple[Principal, Any] | None:
        token = bearer_token(request._request)
        if token is None:
            return None
        try:
            principal = principal_from_bearer(token)
        except Unauthenticated as exc:
            raise exceptions.AuthenticationFailed(exc.message) from None
        return principal, principal.api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


def principal_of(request: Request) -> Principal:
    """The tenant-bound caller of an authenticated request."""
    cached = getattr(request, "_soma_principal", None)
    if cached is not None:
        return cached
    user = request.user
    principal = user if isinstance(user, Principal) else principal_for_user(user)
    request._soma_principal = principal  # type: ignore[attr-defined]
    return principal


def require_scope(principal: Principal, scope: str) -> None:
    if not principal.has_scope(scope):
        raise Forbidden(
            f"This credential lacks the '{scope}' scope.",
            code="insufficient_scope",
            details={"required_scope": scope},
        )


def required_scope(view: Any, method: str) -> str | None:
    """The view's ``required_scopes[method]`` (None: any credential), else read/write by method."""
    declared = getattr(view, "required_scopes", None) or {}
    if method.upper() in declared:
        return declared[method.upper()]
    return sc.scope_for_method(method)


def admit(principal: Principal, scope: str | None) -> None:
    """The scope check and per-key rate limit every caller passes (API, SSE, WebSocket)."""
    if scope is not None:
        require_scope(principal, scope)
    principal_rate_limit(principal)


def request_principal(request: HttpRequest, *, scope: str | None = sc.CONVERSATIONS_READ) -> Principal:
    """The caller of a plain Django view (the SSE stream): a bearer token, else the login session.

    The same rules as the API's (``ApiKeyAuthentication`` then ``IsTenantMember``): the
    scope, reading by default, and the per-key rate limit. Sync: reads the database.
    """
    try:
        token = bearer_token(request)
    except exceptions.AuthenticationFailed as exc:
        raise Unauthenticated(str(exc.detail)) from None
    if token is not None:
        principal = principal_from_bearer(token)
    else:
        user = getattr(request, "user", None)
        if user is None or not getattr(user, "is_authenticated", False):
            raise Unauthenticated("Authentication credentials were not provided.")
        principal = principal_for_user(user)
    admit(principal, scope)
    return principal


class IsTenantMember(permissions.BasePermission):
    """Authenticated, holding the scope the view needs, and within the key's rate limit."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if user is None or not getattr(user, "is_authenticated", False):
            return False
        admit(principal_of(request), required_scope(view, request.method or "GET"))
        return True
