"""Authentication for async views (SSE) and WebSocket handshakes: same rules as the API."""

from __future__ import annotations

from django.http import HttpRequest
from rest_framework import exceptions

from somaagent.apikeys import api_key_authenticate
from somaagent.async_db import db_call
from somaagent.authentication import bearer_token
from somaagent.errors import Unauthenticated
from somaagent.identity import Principal, principal_for_key, principal_for_user


@db_call
def _principal_from_token(token: str) -> Principal | None:
    key = api_key_authenticate(token)
    return principal_for_key(key) if key is not None else None


async def principal_from_token(token: str) -> Principal:
    principal = await _principal_from_token(token)
    if principal is None:
        raise Unauthenticated("Invalid or revoked API key.")
    return principal


async def principal_from_user(user: object) -> Principal:
    if user is None or not getattr(user, "is_authenticated", False):
        raise Unauthenticated("Authentication credentials were not provided.")
    return await db_call(principal_for_user)(user)


async def authenticate_request(request: HttpRequest) -> Principal:
    try:
        token = bearer_token(request)
    except exceptions.AuthenticationFailed as exc:
        raise Unauthenticated(str(exc.detail)) from None
    if token is not None:
        return await principal_from_token(token)
    return await principal_from_user(await request.auser())
