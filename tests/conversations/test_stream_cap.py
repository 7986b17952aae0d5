"""One credential holds at most SOMA_MAX_STREAMS_PER_CREDENTIAL open streams, across SSE,
WebSocket and the OpenAI door; a closed stream gives its slot back."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from conversations.models import Session
from tests.live import LiveSystem, wait_until

pytestmark = pytest.mark.integration

CAP = 2


@pytest.fixture
def capped_web(live_db: None) -> Iterator[LiveSystem]:
    prefix = f"{os.environ['SOMA_REDIS_PREFIX']}{uuid.uuid4().hex[:8]}:"
    system = LiveSystem(env={"SOMA_MAX_STREAMS_PER_CREDENTIAL": str(CAP), "SOMA_REDIS_PREFIX": prefix})
    system.start_web()  # streams need no worker: nothing is answered here
    try:
        yield system
    finally:
        system.stop()


@contextlib.contextmanager
def sse(system: LiveSystem, key: str, session_id: str) -> Iterator[httpx.Response]:
    with httpx.stream(
        "GET",
        f"{system.url}/v1/sessions/{session_id}/stream",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    ) as response:
        yield response


def status_of_one_more(system: LiveSystem, key: str, session_id: str) -> tuple[int, Any]:
    with sse(system, key, session_id) as response:
        return response.status_code, response.read() if response.status_code != 200 else None


def test_a_credential_holds_at_most_its_cap_of_open_streams(capped_web, tenant_key, other_tenant_key):
    session = str(Session.objects.create(tenant=tenant_key.tenant).pk)
    other = str(Session.objects.create(tenant=other_tenant_key.tenant).pk)
    ws_url = f"ws://127.0.0.1:{capped_web.port}/ws/sessions/{session}/?after=0"
    auth = {"Authorization": f"Bearer {tenant_key.key}"}
    with sse(capped_web, tenant_key.key, session) as first:
        assert first.status_code == 200
        with connect(ws_url, additional_headers=auth, open_timeout=10):
            # Two open (one SSE, one WebSocket): the third of either kind is refused.
            status, body = status_of_one_more(capped_web, tenant_key.key, session)
            assert status == 429 and b"too_many_streams" in body
            with pytest.raises(InvalidStatus) as refused:
                connect(ws_url, additional_headers=auth, open_timeout=10)
            assert refused.value.response.status_code == 429
            completion = httpx.post(
                f"{capped_web.url}/v1/chat/completions",
                headers=auth,
                json={"model": "somaagent", "messages": [{"role": "user", "content": "hi"}]},
                timeout=10,
            )
            assert completion.status_code == 429, completion.text
            assert not Session.objects.filter(tenant=tenant_key.tenant).exclude(pk=session).exists()
            # Another credential has its own slots.
            assert status_of_one_more(capped_web, other_tenant_key.key, other)[0] == 200
    # Both closed: their slots come back.
    wait_until(
        lambda: status_of_one_more(capped_web, tenant_key.key, session)[0] == 200,
        timeout=10,
        what="a slot given back",
    )
