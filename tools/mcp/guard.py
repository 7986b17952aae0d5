"""The network guard for MCP over HTTP: every request goes to an address the guard checked.

The same rules as ``http_fetch`` (``tools.netguard``): the request's host must be the server
entry's own host (the SDK follows redirects only within the origin; this holds it to that), it is
resolved, every address must be public unless staff allowed private ones for this server, and the
connection goes to that checked address (no second resolution, no proxy from the environment).
"""

from __future__ import annotations

import anyio.to_thread
import httpx2

from tools.netguard import Refused, resolve_checked


class GuardedTransport(httpx2.AsyncBaseTransport):
    def __init__(self, *, host: str, allow_private: bool) -> None:
        self.host = host.lower()
        self.allow_private = allow_private
        self.inner = httpx2.AsyncHTTPTransport(trust_env=False)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        host = (url.host or "").lower()
        if host != self.host:
            raise Refused(f"the MCP server sent the client to another host ({host!r}); refused")
        port = url.port or (443 if url.scheme == "https" else 80)
        target = await anyio.to_thread.run_sync(
            lambda: resolve_checked(host, port, allow_private=self.allow_private)
        )
        request.url = url.copy_with(host=target.address)
        request.headers["Host"] = host if url.port is None else f"{host}:{url.port}"
        if url.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": host}
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def guarded_client(
    *, url: str, headers: dict[str, str], allow_private: bool, timeout: float
) -> httpx2.AsyncClient:
    host = httpx2.URL(url).host
    return httpx2.AsyncClient(
        transport=GuardedTransport(host=host, allow_private=allow_private),
        headers=headers,
        timeout=httpx2.Timeout(timeout, read=max(timeout, 300.0)),
        trust_env=False,
        follow_redirects=False,
    )
