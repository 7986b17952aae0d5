"""Authentication for async views (SSE) and WebSocket handshakes: same rules as the API.

``authenticate_request`` also enforces a scope (reading by default) and the
per-key rate limit: ``admit``, as ``IsTenantMember`` does for DRF views.
"""

from __future__ import annotations

from django.http import HttpRequest
from rest_framework import exceptions

from somaagent.async_db import db_call
from somaagent.errors import Unauthenticated
from somaagent.identity import scopes as sc
from somaagent.identity.authentication import admit, bearer_token, principal_from_bearer
from somaagent.identity.principal import Principal, principal_for_user


async def principal_from_token(token: str) -> Principal:
    """An API key or JWT access token; raises Unauthenticated."""
    return await db_call(principal_from_bearer)(token)


async def principal_from_user(user: object) -> Principal:
    if user is None or not getattr(user, "is_authenticated", False):
        raise Unauthenticated("Authentication credentials were not provided.")
    return await db_call(principal_for_user)(user)


async def authenticate_request(
    request: HttpRequest, *, scope: str | None = sc.CONVERSATIONS_READ
) -> Principal:
    try:
        token = bearer_token(request)
    except exceptions.AuthenticationFailed as exc:
        raise Unauthenticated(str(exc.detail)) from None
    if token is not None:
        principal = await principal_from_token(token)
    else:
        principal = await principal_from_user(await request.auser())
    await db_call(admit)(principal, scope)
    return principal
