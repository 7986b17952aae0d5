"""One request header from an ASGI scope (HTTP or WebSocket), before any framework parses it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def asgi_header(scope: Mapping[str, Any], name: bytes) -> str | None:
    """The first header ``name`` (lower-case bytes) as text; None when absent or not decodable."""
    for key, value in scope.get("headers") or ():
        if bytes(key).lower() == name:
            try:
                return bytes(value).decode("latin-1")
            except (TypeError, ValueError):
                return None
    return None
