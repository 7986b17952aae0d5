"""Authentication from async code (WebSocket handshakes, the OpenAI door): same rules as the API.

The credential is checked on the shared database threads (``db_call``); callers then
enforce a scope and the per-key rate limit with ``authentication.admit``, as
``IsTenantMember`` does for DRF views. (The SSE stream's opening is a plain view: ``request_principal``.)
"""

from __future__ import annotations

from somaagent.async_db import db_call
from somaagent.identity.authentication import principal_from_bearer
from somaagent.identity.principal import Principal


async def principal_from_token(token: str) -> Principal:
    """An API key or JWT access token; raises Unauthenticated."""
    return await db_call(principal_from_bearer)(token)
