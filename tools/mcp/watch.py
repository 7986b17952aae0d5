"""Per process, one listener per HTTP server whose tools this process offered: ``list_changed``.

A server's tool list is cached for every worker (``catalog``). To learn of a change before the
TTL, a process that offers a server's tools keeps a connection to it open in a background thread
(one event loop for all its listeners): a ``subscriptions/listen`` stream on 2026 servers, the
session's own notification channel on handshake-era ones. A ``tools/list_changed`` event, or a
dropped connection (a change may have been missed), deletes the cached list. A listener that no
turn asked for in ``IDLE_SECONDS`` closes; stdio servers are not watched (each call starts its
own sandboxed process) and rely on the TTL.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from typing import Any

import anyio
import anyio.to_thread
import mcp_types as types
from django.conf import settings
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from somaagent.process_local import PerProcess
from tools.mcp.catalog import tools_invalidate
from tools.mcp.connect import client_for
from tools.mcp.spec import ServerSpec
from tools.models import McpServer

log = logging.getLogger(__name__)
RECONNECT_SECONDS = (1.0, 2.0, 5.0, 15.0, 30.0)


class Watcher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._seen: dict[tuple[uuid.UUID, str], float] = {}  # (server, version) -> last asked for
        self.listening: set[tuple[uuid.UUID, str]] = set()  # subscribed right now

    def _idle_seconds(self) -> float:
        return max(60.0, 2 * settings.SOMA.tools.mcp_tools_ttl_seconds)

    def watch(self, spec: ServerSpec) -> None:
        if spec.transport == McpServer.Transport.STDIO:
            return
        ident = (spec.id, spec.version)
        with self._lock:
            running = ident in self._seen
            self._seen[ident] = time.monotonic()
            if running:
                return
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="mcp-watch", daemon=True).start()
            asyncio.run_coroutine_threadsafe(self._listen(spec), self._loop)

    def _wanted(self, spec: ServerSpec) -> float:
        """Seconds this listener should still run (0: nobody asked for it lately)."""
        with self._lock:
            last = self._seen.get((spec.id, spec.version), 0.0)
            left = last + self._idle_seconds() - time.monotonic()
            if left <= 0:
                self._seen.pop((spec.id, spec.version), None)
            return max(0.0, left)

    async def _listen(self, spec: ServerSpec) -> None:
        failures = 0
        connected_before = False
        while self._wanted(spec) > 0:
            try:
                await self._session(spec, invalidate_first=connected_before)
                failures = 0
            except Exception as exc:
                log.debug("MCP listener lost its server", extra={"mcp_server": spec.name, "cause": repr(exc)})
                failures += 1
            connected_before = True
            await anyio.sleep(RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)])

    async def _session(self, spec: ServerSpec, *, invalidate_first: bool) -> None:
        ident = (spec.id, spec.version)
        notified = _Flag()
        try:
            async with client_for(spec, timeout=spec.timeout, message_handler=notified.on_message) as client:
                if invalidate_first:
                    await anyio.to_thread.run_sync(tools_invalidate, spec)
                if client.protocol_version in MODERN_PROTOCOL_VERSIONS:
                    async with client.listen(tools_list_changed=True) as subscription:
                        self.listening.add(ident)
                        while (left := self._wanted(spec)) > 0:
                            with anyio.move_on_after(min(left, 30.0)):
                                async for _event in subscription:
                                    await anyio.to_thread.run_sync(tools_invalidate, spec)
                                return  # the server closed the stream: reconnect
                else:
                    self.listening.add(ident)
                    while (left := self._wanted(spec)) > 0:
                        with anyio.move_on_after(min(left, 30.0)):
                            await notified.wait()
                            await anyio.to_thread.run_sync(tools_invalidate, spec)
        finally:
            self.listening.discard(ident)


class _Flag:
    """Set by a handshake-era session's ``tools/list_changed`` notification; cleared when waited."""

    def __init__(self) -> None:
        self.event = anyio.Event()

    async def on_message(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self.event.set()

    async def wait(self) -> None:
        await self.event.wait()
        self.event = anyio.Event()


_watcher = PerProcess(Watcher)


def watch(spec: ServerSpec) -> None:
    """Keep (or start) this process's listener for ``spec``'s tool list changes."""
    _watcher.get().watch(spec)


def listening(spec: ServerSpec) -> bool:
    """Whether this process is subscribed to ``spec``'s changes right now."""
    return (spec.id, spec.version) in _watcher.get().listening
