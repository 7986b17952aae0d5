"""Whether an HTTP request's credentials check out, from its ASGI scope, before its body is read.

The body limit (somaagent/project/body_limit.py) grants the upload paths' larger limit only to a
caller known here, so that nobody without credentials can make the server read (and spool to
disk) tens of megabytes before authentication answers 401 (issue 14 item 3). The same two ways
in as the API and the web chat: a bearer API key or JWT access token (judged alone, as the API
does), or the web chat's login session cookie of an active user. Anything that goes wrong
(a malformed header, the database unreachable) is "not known": the small limit applies.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user
from django.db import DatabaseError
from django.http import HttpRequest, parse_cookie

from somaagent.asgi_headers import asgi_header
from somaagent.async_db import db_call
from somaagent.errors import SomaError
from somaagent.identity.async_auth import principal_from_token

Scope = MutableMapping[str, Any]


async def _bearer_known(token: str) -> bool:
    try:
        await principal_from_token(token)
    except SomaError:
        return False
    return True


@db_call
def _session_user_known(session_key: str) -> bool:
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = get_user(request)  # it reads request.session only
    return bool(user.is_authenticated and user.is_active)


async def http_caller_known(scope: Scope) -> bool:
    """True when the request carries a valid API key, JWT access token or login session."""
    try:
        header = asgi_header(scope, b"authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            return scheme.lower() == "bearer" and bool(token.strip()) and await _bearer_known(token.strip())
        session_key = parse_cookie(asgi_header(scope, b"cookie") or "").get(settings.SESSION_COOKIE_NAME)
        return bool(session_key) and await _session_user_known(str(session_key))
    except (DatabaseError, UnicodeError, ValueError):
        return False
