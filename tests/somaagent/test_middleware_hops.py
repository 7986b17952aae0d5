"""Django's middleware runs in one thread crossing per request under ASGI, and still runs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref import sync
from asgiref.testing import ApplicationCommunicator

from somaagent.asgi import application
from tests.somaagent.support import http_scope


async def _get(path: str) -> dict[str, Any]:
    scope = http_scope(path)
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await communicator.receive_output(5)
    await communicator.receive_output(5)  # the body
    await communicator.wait(5)
    return start


def test_djangos_middleware_crosses_into_a_thread_once_per_request_not_once_per_hook(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crossings: list[str] = []
    real_call = sync.SyncToAsync.__call__

    async def counting(self: sync.SyncToAsync, *args: Any, **kwargs: Any) -> Any:
        crossings.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await real_call(self, *args, **kwargs)

    monkeypatch.setattr(sync.SyncToAsync, "__call__", counting)
    start = asyncio.run(_get("/healthz"))
    assert start["status"] == 200
    # Before: each of the seven Django middlewares crossed into a thread on its own, for
    # its request hook and again for its response hook (16 crossings for this request), each
    # a handoff that waits for the GIL in a burst. Now they run together, in one crossing.
    one_by_one = [c for c in crossings if c.endswith(("process_request", "process_response"))]
    assert one_by_one == [], crossings
    # And the rest of the request (request_started, the chain, the view, closing the
    # response: five crossings under Django's own handler) is one crossing too.
    assert crossings == ["OneHopASGIHandler._respond"], crossings
    headers = {name.lower(): value for name, value in start["headers"]}
    # The middlewares still did their work: SecurityMiddleware and XFrameOptionsMiddleware.
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert headers[b"x-frame-options"] == b"DENY"
