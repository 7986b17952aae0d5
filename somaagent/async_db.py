"""Database access from async code (SSE, WebSocket) on a small shared pool of threads.

``sync_to_async`` inside an ASGI request runs in a thread of that request's
own (``ThreadSensitiveContext``), and Django keeps one connection per thread:
a stream that lasts minutes would hold a database connection for minutes, and
200 streams would need 200 connections (PostgreSQL allows 100 by default).
``db_call`` runs the function on a pool of ``SOMA_ASYNC_DB_THREADS`` threads
instead, and gives the connection back after each call, so a web process holds
at most that many connections however many clients stream, and idle streams none.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connections

from somaagent.environment import env_int

P = ParamSpec("P")
R = TypeVar("R")

_executor = ThreadPoolExecutor(max_workers=env_int("SOMA_ASYNC_DB_THREADS", 8), thread_name_prefix="async-db")


def db_call(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """Decorator: an async version of ``func`` that runs on the shared database threads."""

    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            connections.close_all()  # back to the pool: an idle stream holds no connection

    pooled = sync_to_async(run, thread_sensitive=False, executor=_executor)
    inline = sync_to_async(func, thread_sensitive=True)

    @functools.wraps(func)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        return await (inline if _inline else pooled)(*args, **kwargs)

    return call


_inline = False


def run_inline(enabled: bool) -> None:
    """Tests with in-process clients run async views inside the test's transaction, on its thread."""
    global _inline
    _inline = enabled
