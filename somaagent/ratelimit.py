"""Request rate limits in Redis: a fixed one-minute window per API key (or user, or login source).

``INCR`` + ``EXPIRE`` in one round trip; over the limit is ``RateLimited`` (429)
with ``Retry-After`` = seconds until the window ends. If Redis cannot be reached
the limit cannot be checked, and the request is refused (503
``rate_limit_unavailable``, ``Retry-After``) rather than let through: a limit
that fails open is no limit at all when it matters (a flood is what takes
Redis down). Logins are refused the same way.
"""

from __future__ import annotations

import logging
import math
import time

import redis
from django.conf import settings

from somaagent.errors import RateLimited, RateLimitUnavailable
from somaagent.identity.principal import Principal
from somaagent.redis_client import key, sync_redis

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60


def rate_limit_hit(*, bucket: str, limit: int, window: int = WINDOW_SECONDS, what: str = "requests") -> None:
    """Count one hit in ``bucket``; raise RateLimited when the window already holds ``limit``."""
    if limit <= 0:
        return
    now = time.time()
    start = int(now // window) * window
    counter = key("ratelimit", bucket, start)
    try:
        pipe = sync_redis().pipeline(transaction=False)
        pipe.incr(counter)
        pipe.expire(counter, window + 5)
        count, _ = pipe.execute()
    except redis.RedisError as exc:
        log.warning("rate limit cannot be checked: Redis unavailable; refusing", extra={"bucket": bucket})
        raise RateLimitUnavailable() from exc
    if int(count) > limit:
        retry_after = max(1, math.ceil(start + window - now))
        raise RateLimited(
            f"Too many {what}: at most {limit} per {window} seconds.",
            retry_after=retry_after,
            details={"limit": limit, "window_seconds": window},
        )


def principal_rate_limit(principal: Principal) -> None:
    """The per-key limit (the key's own, else SOMA_RATE_LIMIT_PER_MINUTE); users share the default."""
    limit = settings.SOMA.rate_limit_per_minute
    if principal.api_key is not None and principal.api_key.rate_limit_per_minute is not None:
        limit = principal.api_key.rate_limit_per_minute
    rate_limit_hit(bucket=principal.rate_limit_id, limit=limit)
