"""DRF authentication: ``Authorization: Bearer <api key>``, or the web chat's login session."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from somaagent.apikeys import api_key_authenticate
from somaagent.identity import Principal, principal_for_key, principal_for_user


def bearer_token(request: HttpRequest) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <api key>'.")
    return token.strip()


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Principal, Any] | None:
        token = bearer_token(request._request)
        if token is None:
            return None
        key = api_key_authenticate(token)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return principal_for_key(key), key

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


class IsTenantMember(permissions.BasePermission):
    """Any authenticated caller; tenant scoping happens in every selector and service."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if user is None or not getattr(user, "is_authenticated", False):
            return False
        principal_of(request)
        return True
