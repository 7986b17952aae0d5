"""The operators' bearer token (``SOMA_METRICS_TOKEN``): /metrics, a worker's metrics port, and the
details of /readyz in PROD. PROD refuses to start without it (somaagent/environment.py)."""

from __future__ import annotations

import hmac

from django.conf import settings


def bearer_is_ops_token(authorization: str) -> bool:
    """``Authorization: Bearer <SOMA_METRICS_TOKEN>``; False when no token is configured."""
    token = settings.SOMA_OPS.metrics_token
    if not token or not authorization.startswith("Bearer "):
        return False
    return hmac.compare_digest(authorization[7:].encode(), token.encode())


def metrics_allowed(authorization: str) -> bool:
    """Metrics need the token when one is set (always in PROD); without one (DEV) they are open."""
    return not settings.SOMA_OPS.metrics_token or bearer_is_ops_token(authorization)
