"""One Redis client per process (sync) and per event loop (async), reused."""

from __future__ import annotations

import asyncio
import weakref

import redis
import redis.asyncio as aioredis
from django.conf import settings

from somaagent.process_local import PerProcess

# redis-py names itself to the server on every new connection (two CLIENT SETINFO round
# trips) and finds its own version in the installed package's metadata each time, which
# reads files: under a burst that opens many connections at once it was a tenth of the web
# process's CPU. None turns both off; the server then lists these clients without a library.
NO_CLIENT_SETINFO = None

# Keyed by the loop itself (weakly): a new loop that reuses a dead loop's id() must
# not get a client bound to the dead loop (tests run many short loops).
_async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = weakref.WeakKeyDictionary()


_sync = PerProcess(
    lambda: redis.Redis(
        connection_pool=redis.BlockingConnectionPool.from_url(
            settings.REDIS_URL,
            socket_timeout=5,
            socket_connect_timeout=2,
            health_check_interval=30,
            # A worker's threads (one per running turn) may each hold one, e.g. waiting on a tool.
            max_connections=max(200, settings.SOMA.worker_concurrency + 50),
            timeout=5,
            driver_info=NO_CLIENT_SETINFO,
        )
    )
)


def sync_redis() -> redis.Redis:
    """The process's client; rebuilt after fork (Celery prefork children)."""
    return _sync.get()


def async_redis() -> aioredis.Redis:
    """A client bound to the running event loop (blocking XREADs hold a connection each)."""
    loop = asyncio.get_running_loop()
    client = _async.get(loop)
    if client is None:
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.REDIS_URL,
            max_connections=5000,
            timeout=10,
            socket_connect_timeout=2,
            # redis-py's default read timeout (5 s) is shorter than a stream's blocking
            # XREAD (one heartbeat, 15 s): every quiet stream would time out.
            socket_timeout=settings.SOMA.sse_heartbeat_seconds + 10,
            driver_info=NO_CLIENT_SETINFO,
        )
        client = aioredis.Redis(connection_pool=pool)
        _async[loop] = client
    return client


def key(*parts: object) -> str:
    return settings.REDIS_KEY_PREFIX + ":".join(str(p) for p in parts)
