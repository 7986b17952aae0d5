"""A circuit breaker per tool and tenant, in Redis (derived state: losing it only resets it).

``SOMA_TOOL_BREAKER_FAILURES`` consecutive errors or timeouts open the
breaker for ``SOMA_TOOL_BREAKER_OPEN_SECONDS``; calls meanwhile are blocked
with a clear message. After that one call is let through: a success closes
the breaker, another failure opens it again at once (half-open). Per tenant,
so one tenant's failing calls never switch a tool off for the others. When
Redis is unreachable the breaker lets calls through (it protects, it does
not authorise).
"""

from __future__ import annotations

import logging
import uuid

import redis
from django.conf import settings

from somaagent.redis_client import key, sync_redis

log = logging.getLogger(__name__)
FAILURE_MEMORY_SECONDS = 3600


def _keys(tool: str, tenant_id: uuid.UUID | str) -> tuple[str, str]:
    return key("toolbreaker", tool, tenant_id, "fails"), key("toolbreaker", tool, tenant_id, "open")


def breaker_open_for(*, tool: str, tenant_id: uuid.UUID | str) -> int | None:
    """Seconds until the breaker closes again, or None when calls may go through."""
    _, open_key = _keys(tool, tenant_id)
    try:
        ttl = int(sync_redis().ttl(open_key))
    except redis.RedisError:
        log.warning("circuit breaker state unreadable; letting the call through", extra={"tool": tool})
        return None
    return max(1, ttl) if ttl > 0 or ttl == -1 else None


def breaker_record(*, tool: str, tenant_id: uuid.UUID | str, ok: bool) -> None:
    fails_key, open_key = _keys(tool, tenant_id)
    cfg = settings.SOMA.tools
    try:
        client = sync_redis()
        if ok:
            client.delete(fails_key)
            return
        pipe = client.pipeline()
        pipe.incr(fails_key)
        pipe.expire(fails_key, FAILURE_MEMORY_SECONDS)
        failures = int(pipe.execute()[0])
        if failures >= cfg.breaker_failures:
            client.set(open_key, failures, ex=cfg.breaker_open_seconds)
            log.warning(
                "tool circuit breaker open",
                extra={"tool": tool, "tenant_id": str(tenant_id), "failures": failures},
            )
    except redis.RedisError:
        log.warning("could not record a tool outcome in the circuit breaker", extra={"tool": tool})
