"""Sync views run in one thread hop per request under ASGI (somaagent/project/asgi_handler.py)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.core import signals
from django.test import override_settings

from somaagent.project.asgi_handler import OneHopASGIHandler
from tests.somaagent import one_hop_urls
from tests.somaagent.support import http_scope

URLCONF = "tests.somaagent.one_hop_urls"


async def _request(
    app: Any, path: str, body: bytes = b"", method: str = "GET", root_path: str = ""
) -> tuple[int, bytes]:
    scope = http_scope(path, method=method, body=body, root_path=root_path)
    communicator = ApplicationCommunicator(app, scope)
    await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await communicator.receive_output(5)
    content = b""
    while True:
        message = await communicator.receive_output(5)
        content += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait(5)
    return start["status"], content


@pytest.fixture
def handler() -> Iterator[OneHopASGIHandler]:
    with override_settings(ROOT_URLCONF=URLCONF):
        yield OneHopASGIHandler(threads=2)
    one_hop_urls.SEEN.clear()


@pytest.fixture
def signal_threads() -> Iterator[dict[str, int]]:
    threads: dict[str, int] = {}

    def started(**_: Any) -> None:
        threads["started"] = threading.get_ident()

    def finished(**_: Any) -> None:
        threads["finished"] = threading.get_ident()

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    yield threads
    signals.request_started.disconnect(started)
    signals.request_finished.disconnect(finished)


def test_a_sync_view_runs_with_its_signals_on_one_pool_thread(
    handler: OneHopASGIHandler, signal_threads: dict[str, int]
) -> None:
    loop_thread: list[int] = []

    async def go() -> tuple[int, bytes]:
        loop_thread.append(threading.get_ident())
        return await _request(handler, "/sync", b"hello", method="POST")

    assert asyncio.run(go()) == (200, b"sync hello")
    view = one_hop_urls.SEEN["view_thread"]
    # Django's own handler runs request_started, the view and request_finished on three
    # different crossings (and a new thread per request): here one thread does all three,
    # so the database connection the view took goes back on the thread that took it.
    assert signal_threads == {"started": view, "finished": view}
    assert view != loop_thread[0]


def test_requests_reuse_the_pool_s_threads_rather_than_making_one_each(handler: OneHopASGIHandler) -> None:
    for _ in range(5):
        assert asyncio.run(_request(handler, "/sync", b"again", method="POST")) == (200, b"sync again")
    # Django's handler made a thread (an executor) for every request, five here; a thread
    # start is a handoff through the GIL too. The pool has two.
    assert set(one_hop_urls.SEEN["view_thread_names"]) <= {"request_0", "request_1"}


def test_an_async_view_still_runs_on_the_event_loop(handler: OneHopASGIHandler) -> None:
    loop_thread: list[int] = []

    async def go() -> tuple[int, bytes]:
        loop_thread.append(threading.get_ident())
        return await _request(handler, "/async")

    assert asyncio.run(go()) == (200, b"async")
    assert one_hop_urls.SEEN["async_view_thread"] == loop_thread[0]


def test_an_async_view_behind_a_path_prefix_takes_djangos_async_path(
    handler: OneHopASGIHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    pooled: list[str] = []
    respond = handler._respond

    def counting(scope: dict[str, Any], body: Any) -> Any:
        pooled.append(scope["path"])
        return respond(scope, body)

    monkeypatch.setattr(handler, "_respond", counting)
    # Mounted under /soma (uvicorn --root-path): routes are matched without the prefix, as
    # Django matches them; an async view found so is not sent through the thread pool.
    assert asyncio.run(_request(handler, "/soma/async", root_path="/soma")) == (200, b"async")
    assert asyncio.run(_request(handler, "/soma/sync", b"x", method="POST", root_path="/soma")) == (
        200,
        b"sync x",
    )
    assert pooled == ["/soma/sync"]


def test_a_streaming_response_of_a_sync_view_is_sent_whole_and_closed(
    handler: OneHopASGIHandler, signal_threads: dict[str, int]
) -> None:
    assert asyncio.run(_request(handler, "/stream")) == (200, b"one two")
    assert "finished" in signal_threads  # closed after it was sent


def test_a_file_response_of_a_sync_view_arrives_whole(handler: OneHopASGIHandler) -> None:
    assert asyncio.run(_request(handler, "/file")) == (200, bytes(range(256)) * 1024)


def test_an_unknown_path_is_a_404_from_the_sync_chain(handler: OneHopASGIHandler) -> None:
    status, _ = asyncio.run(_request(handler, "/nowhere"))
    assert status == 404


def test_no_more_sync_requests_run_at_once_than_the_pool_has_threads(handler: OneHopASGIHandler) -> None:
    one_hop_urls.RUNNING.update(now=0, most=0)

    async def go() -> list[tuple[int, bytes]]:
        return await asyncio.gather(*(_request(handler, "/slow") for _ in range(5)))

    assert asyncio.run(go()) == [(200, b"slow")] * 5
    assert one_hop_urls.RUNNING["most"] == 2  # SOMA_WEB_THREADS bounds them; the rest waited


def test_an_endless_stream_stops_when_its_client_disconnects(handler: OneHopASGIHandler) -> None:
    """Uvicorn drops what is sent after a disconnect without a word: unless the handler
    listens for the disconnect, an SSE stream would run (and hold its slot) forever."""

    async def go() -> None:
        scope = http_scope("/endless")
        communicator = ApplicationCommunicator(handler, scope)
        await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
        assert (await communicator.receive_output(5))["status"] == 200
        assert (await communicator.receive_output(5))["body"] == b": beat\n\n"
        await communicator.send_input({"type": "http.disconnect"})
        # The handler returns on its own (nothing cancels it here): the stream was stopped.
        for _ in range(300):
            if communicator.future.done():
                break
            await asyncio.sleep(0.01)
        assert communicator.future.done(), "the stream went on after its client disconnected"
        await communicator.wait(1)

    asyncio.run(go())
    assert one_hop_urls.SEEN["endless"] == "stopped"
