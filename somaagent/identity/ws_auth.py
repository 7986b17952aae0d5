"""WebSocket handshake authentication: an API key, or the web chat's login session.

Two ways in, chosen by what the handshake carries:

- **API key** (programmatic clients): ``Authorization: Bearer <key>`` in the
  handshake, or, where a client cannot set headers (browsers), the
  subprotocols ``["soma.v1", "bearer.<key>"]``. The server answers with the
  ``soma.v1`` subprotocol, never echoing the key. A JWT access token works
  wherever a key does. A handshake that carries a
  key is judged by that key alone: the login cookie is not consulted, so a
  page on another site cannot borrow the cookie by also sending a bogus key.
  Keys are never logged.
- **Session cookie** (the web chat): Channels' ``AllowedHostsOriginValidator``
  refuses handshakes whose ``Origin`` is not one of ``ALLOWED_HOSTS`` (no
  cross-site WebSocket hijacking), then ``AuthMiddlewareStack`` loads the user.

Either way the consumer finds ``scope["soma_principal"]`` (a Principal) or
``scope["soma_auth_error"]`` (why not) and decides before accepting. A database
that cannot be reached while the credentials are looked up is the reason too
(``database_unavailable``, 503), never an exception out of the ASGI application.
"""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddleware
from channels.security.websocket import AllowedHostsOriginValidator
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.contrib.auth.models import AnonymousUser

from somaagent.api_errors import unavailable_database
from somaagent.asgi_headers import asgi_header
from somaagent.async_db import db_call
from somaagent.errors import Forbidden, SomaError, Unauthenticated
from somaagent.identity.async_auth import principal_from_token
from somaagent.identity.principal import Principal, principal_for_user

APP_SUBPROTOCOL = "soma.v1"
KEY_SUBPROTOCOL_PREFIX = "bearer."

Scope = dict[str, Any]
App = Any


def key_credentials(scope: Scope) -> str | None:
    """The API key the handshake carries, '' for a malformed one, None for none at all."""
    header = asgi_header(scope, b"authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""
    for protocol in scope.get("subprotocols") or []:
        if protocol.startswith(KEY_SUBPROTOCOL_PREFIX):
            return protocol[len(KEY_SUBPROTOCOL_PREFIX) :]
    return None


async def _principal_for_raw_key(raw: str) -> Principal | None:
    """An API key or a JWT access token (identity issue), None if neither is valid."""
    try:
        return await principal_from_token(raw)
    except Unauthenticated:
        return None


@db_call
def _principal_for_user(user: Any) -> Principal:
    return principal_for_user(user)


def _database_down(exc: Exception) -> SomaError:
    """The refusal for a lookup that failed because the database is away; anything else raises."""
    down = unavailable_database(exc)
    if down is None:
        raise exc
    return down


class _KeyAuth:
    def __init__(self, inner: App) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        scope = dict(scope)
        raw = key_credentials(scope) or ""
        try:
            principal = await _principal_for_raw_key(raw) if raw else None
        except Exception as exc:
            scope["soma_auth_error"] = _database_down(exc)
            return await self.inner(scope, receive, send)
        if principal is None:
            scope["soma_auth_error"] = Unauthenticated(
                "Invalid or revoked credentials."
                if raw
                else "Use 'Authorization: Bearer <api key or token>'."
            )
        else:
            scope["soma_principal"] = principal
        return await self.inner(scope, receive, send)


class _SessionUser(AuthMiddleware):
    """Channels' AuthMiddleware (the login session's user); without the database, nobody, and why."""

    async def resolve_scope(self, scope: Scope) -> None:
        try:
            await super().resolve_scope(scope)
        except Exception as exc:
            scope["soma_auth_error"] = _database_down(exc)
            scope["user"]._wrapped = AnonymousUser()


class _UserAuth:
    """Runs after Channels' AuthMiddleware: turns the logged-in user into a Principal."""

    def __init__(self, inner: App) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        scope = dict(scope)
        if "soma_auth_error" in scope:  # the session could not be read
            return await self.inner(scope, receive, send)
        user = scope.get("user")
        if user is None or not getattr(user, "is_authenticated", False):
            scope["soma_auth_error"] = Unauthenticated("Log in, or send an API key.")
        else:
            try:
                scope["soma_principal"] = await _principal_for_user(user)
            except Forbidden as exc:  # removed from every tenant
                scope["soma_auth_error"] = exc
            except Exception as exc:
                scope["soma_auth_error"] = _database_down(exc)
        return await self.inner(scope, receive, send)


def WebsocketAuthStack(inner: App) -> App:  # named like Channels' AuthMiddlewareStack
    by_key = _KeyAuth(inner)
    # Channels' AuthMiddlewareStack, with an AuthMiddleware that survives a database outage.
    by_cookie = AllowedHostsOriginValidator(
        CookieMiddleware(SessionMiddleware(_SessionUser(_UserAuth(inner))))
    )

    async def app(scope: Scope, receive: Any, send: Any) -> Any:
        if key_credentials(scope) is not None:
            return await by_key(scope, receive, send)
        return await by_cookie(scope, receive, send)

    return app
