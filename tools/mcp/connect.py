"""The SDK client for one server entry: the transport its entry names, its credentials attached."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import Implementation

from tools.mcp.guard import guarded_client
from tools.mcp.local import stdio_parameters
from tools.mcp.spec import ServerSpec
from tools.models import McpServer

CLIENT_INFO = Implementation(name="SomaAgent", version="1")


@asynccontextmanager
async def _transport(spec: ServerSpec, *, timeout: float) -> AsyncIterator[Any]:
    secret_headers = dict(spec.secrets.headers)
    seconds = timeout
    if spec.transport == McpServer.Transport.STDIO:
        with tempfile.TemporaryFile(mode="w+") as errlog:  # the server's stderr: kept out of the worker's
            async with stdio_client(stdio_parameters(spec), errlog=errlog) as streams:
                yield streams
    elif spec.transport == McpServer.Transport.SSE:

        def factory(
            headers: dict[str, str] | None = None,
            timeout: httpx2.Timeout | None = None,
            auth: httpx2.Auth | None = None,
        ) -> httpx2.AsyncClient:
            return guarded_client(
                url=spec.url, headers=secret_headers, allow_private=spec.allow_private, timeout=seconds
            )

        async with sse_client(spec.url, timeout=seconds, httpx_client_factory=factory) as streams:
            yield streams
    else:
        async with (
            guarded_client(
                url=spec.url, headers=secret_headers, allow_private=spec.allow_private, timeout=seconds
            ) as http,
            streamable_http_client(spec.url, http_client=http) as streams,
        ):
            yield streams


class _Streams:
    """A ``Transport`` over an already built context (the SDK's ``Client`` accepts any)."""

    def __init__(self, spec: ServerSpec, timeout: float) -> None:
        self._cm = _transport(spec, timeout=timeout)

    async def __aenter__(self) -> Any:
        return await self._cm.__aenter__()

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._cm.__aexit__(*exc)


def client_for(spec: ServerSpec, *, timeout: float, message_handler: Any = None) -> Client:
    """An unentered SDK client; ``mode="auto"`` speaks the 2026 protocol or falls back to the handshake."""
    return Client(
        _Streams(spec, timeout),
        read_timeout_seconds=timeout,
        client_info=CLIENT_INFO,
        message_handler=message_handler,
        cache=None,  # our own cache (catalog) is shared by every worker
        mode="auto",
    )
