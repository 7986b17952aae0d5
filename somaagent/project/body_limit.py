"""Request bodies over the limit are refused while they stream in: 413, before anything else.

Django's ASGI handler reads the whole body (spooling it to a temporary file past
``FILE_UPLOAD_MAX_MEMORY_SIZE``) before any middleware, authentication or view runs, so
an endless chunked body from anyone was read to its end. ``BodyLimit`` wraps the ASGI
application (somaagent/asgi.py) and for every HTTP request:

- answers 413 at once when ``Content-Length`` exceeds the limit (nothing is read);
- otherwise counts the body as it arrives and, at the first byte over the limit, tells
  the application the client went away (``http.disconnect``: Django drops the request
  without a response) and answers 413 itself; the rest is never read, and the server
  closes the connection.

The limit is ``SOMA_MAX_REQUEST_BYTES``, or a larger one for the paths given (uploads), which
only a caller whose credentials check out (``caller_known``, asked before any of the body is
read) gets: without them an upload path has the small limit too, so nobody can make the server
read tens of megabytes only to be told 401. WebSocket and lifespan traffic pass through untouched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from somaagent.api_errors import error_body
from somaagent.asgi_headers import asgi_header

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[..., Awaitable[None]]


class BodyLimit:
    def __init__(
        self,
        app: AsgiApp,
        *,
        max_bytes: int,
        path_limits: Mapping[str, int] | None = None,
        pattern_limits: Mapping[str, int] | None = None,
        caller_known: Callable[[Scope], Awaitable[bool]] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = dict(path_limits or {})
        # Paths with an id in them (regular expressions matched against the whole path).
        self.pattern_limits = [(re.compile(p), limit) for p, limit in (pattern_limits or {}).items()]
        self.caller_known = caller_known

    def limit_for(self, scope: Scope) -> int:
        path = str(scope.get("path", "")).rstrip("/")
        for pattern, limit in self.pattern_limits:
            if pattern.fullmatch(path):
                return limit
        return self.path_limits.get(path, self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        asked = False  # whether the caller was checked for the larger limit

        async def checked_limit() -> int:
            """``limit`` for a caller whose credentials check out, else the small one; asked
            once the body would pass the small limit, so a request within it costs no lookup."""
            nonlocal limit, asked
            if limit > self.max_bytes and not asked:
                asked = True
                if self.caller_known is None or not await self.caller_known(scope):
                    limit = self.max_bytes
            return limit

        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes and declared > await checked_limit():
            await _too_large(send, limit)
            return
        received = 0
        over = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes and received > await checked_limit():
                    over = True
                    return {"type": "http.disconnect"}  # the app stops reading and answers nothing
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counting_receive, tracking_send)
        if over and not started:
            await _too_large(send, limit)


def _content_length(scope: Scope) -> int | None:
    raw = asgi_header(scope, b"content-length")
    try:
        return None if raw is None else int(raw)
    except ValueError:
        return None  # the server rejects a malformed length itself


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps(
        error_body("payload_too_large", "The request body is too large.", {"max_bytes": limit})
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
