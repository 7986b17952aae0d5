"""``Soma-Signature``: HMAC-SHA256 over ``"<unix seconds>." + body``, hex, one ``v1`` per secret."""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "Soma-Signature"
SECRET_PREFIX = "whsec_"


def secret_new() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, *, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secrets_in_use: list[str], *, timestamp: int, body: bytes) -> str:
    """``t=…,v1=…[,v1=…]``: one signature per secret in use (two just after a rotation)."""
    parts = [f"t={timestamp}"]
    parts += [f"v1={signature(s, timestamp=timestamp, body=body)}" for s in secrets_in_use]
    return ",".join(parts)
