"""Views for tests/somaagent/test_one_hop_handler.py: which thread runs what."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

SEEN: dict[str, Any] = {}
RUNNING = {"now": 0, "most": 0}
_lock = threading.Lock()


@csrf_exempt
def sync_view(request: HttpRequest) -> HttpResponse:
    SEEN["view_thread"] = threading.get_ident()
    SEEN.setdefault("view_thread_names", []).append(threading.current_thread().name)
    return HttpResponse(f"sync {request.body.decode()}")


def slow_view(request: HttpRequest) -> HttpResponse:
    with _lock:
        RUNNING["now"] += 1
        RUNNING["most"] = max(RUNNING["most"], RUNNING["now"])
    time.sleep(0.2)
    with _lock:
        RUNNING["now"] -= 1
    return HttpResponse("slow")


async def async_view(request: HttpRequest) -> HttpResponse:
    SEEN["async_view_thread"] = threading.get_ident()
    return HttpResponse("async")


def streaming_view(request: HttpRequest) -> StreamingHttpResponse:
    def parts() -> Iterator[bytes]:
        yield b"one "
        yield b"two"

    return StreamingHttpResponse(parts())


def endless_view(request: HttpRequest) -> StreamingHttpResponse:
    """A sync view whose frames come from an endless async iterator, as the SSE stream's do."""

    async def frames() -> AsyncIterator[bytes]:
        SEEN["endless"] = "running"
        try:
            while True:
                yield b": beat\n\n"
                await asyncio.sleep(0.01)
        finally:
            SEEN["endless"] = "stopped"

    return StreamingHttpResponse(frames())


def file_view(request: HttpRequest) -> FileResponse:
    return FileResponse(io.BytesIO(bytes(range(256)) * 1024), filename="data.bin")


urlpatterns = [
    path("file", file_view),
    path("sync", sync_view),
    path("slow", slow_view),
    path("async", async_view),
    path("stream", streaming_view),
    path("endless", endless_view),
]
