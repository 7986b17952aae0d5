"""Django under ASGI with one thread hop per request to a sync view.

Django's ``ASGIHandler`` takes a sync view's request through the event loop and
threads several times: ``request_started``'s receivers in a thread, the sync
middleware in a thread made for the request (a new thread each time), back to
the event loop for the innermost handler, the view on that thread again, and
``response.close()`` (``request_finished``) in a thread once more. Each
crossing is a handoff between the loop and a thread through the GIL: a
``/healthz`` cost 2.4 ms of the web process's CPU, now 0.9 ms; an accept
about 7 ms, now 6 (BENCHMARKS.md).

Here a sync view's request (the API, admin, the web chat's pages) runs as WSGI
runs it: the whole request, signals and middleware included, on one thread of
a bounded pool (``SOMA_WEB_THREADS``), reached in one hop; the response goes out
from the event loop. The body is read on the event loop first, so a slow
client holds no thread. Async views (the OpenAI door, ``/readyz``) keep
Django's async path unchanged. A sync view's streaming response (a download,
an export, the SSE stream's frames from an async iterator) is sent as Django
sends it, in the request's own thread-sensitive context, until it ends or the
client disconnects, and closed there.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, iscoroutinefunction, sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.db import close_old_connections
from django.http import FileResponse, HttpResponseBase
from django.urls import Resolver404, get_resolver, set_script_prefix


class OneHopASGIHandler(ASGIHandler):
    def __init__(self, *, threads: int) -> None:
        super().__init__()  # Django's async chain, for async views
        self._sync = BaseHandler()
        self._sync.load_middleware(is_async=False)  # the chain WSGI would run
        self._threads = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="request")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self._async_view(scope):
            await super().__call__(scope, receive, send)
            return
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            response = await sync_to_async(self._respond, thread_sensitive=False, executor=self._threads)(
                scope, body_file
            )
            if not response.streaming:
                await self.send_response(response, send)
                return
            async with ThreadSensitiveContext():  # as Django iterates and closes it
                try:
                    await self._send_until_disconnect(response, send, receive)
                finally:
                    await sync_to_async(response.close)()
        finally:
            body_file.close()

    async def _send_until_disconnect(self, response: HttpResponseBase, send: Any, receive: Any) -> None:
        """Send a streaming response until it ends or the client goes away, as Django does.

        A client that disconnects from an endless stream (SSE) must stop it: the
        server drops what is sent after a disconnect without a word, so the stream
        would otherwise run, holding its slot and its Redis connection, forever.
        """
        sending = asyncio.create_task(self.send_response(response, send))
        listening = asyncio.create_task(self.listen_for_disconnect(receive))
        await asyncio.wait([sending, listening], return_when=asyncio.FIRST_COMPLETED)
        for task in (listening, sending):
            if not task.done():
                task.cancel()
            try:
                await task
            except (asyncio.CancelledError, RequestAborted):
                pass

    @staticmethod
    def _async_view(scope: dict[str, Any]) -> bool:
        """Whether the request routes to an async view (a path no route matches: a sync 404)."""
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):  # Django's path_info, as ASGIRequest makes it
            path = path[len(root) :]
        try:
            func = get_resolver().resolve(path).func
        except Resolver404:
            return False
        return iscoroutinefunction(func)  # asgiref's: async def, or marked so (as Django does)

    def _respond(self, scope: dict[str, Any], body_file: Any) -> HttpResponseBase:
        """On a pool thread: what Django's WSGI handler does for one request."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self._sync.get_response(request)
        assert response is not None
        response._handler_class = self.__class__  # type: ignore[attr-defined]
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size  # as Django's handler: the server chunks it
        if response.streaming:
            # Closed (request_finished) in another thread once sent: this thread's
            # connection goes back to the pool now, as request_finished would return it.
            close_old_connections()
        else:
            response.close()  # request_finished: the database connection goes back to the pool
        return response
