"""An open SSE or WebSocket stream ends, with a final error frame, once its credentials lapse:
revoked key, deactivated user, removed membership, expired JWT (issue 14, item 4).

Against a real ASGI server (uvicorn) with a one-second heartbeat; no worker is needed: the
stream replays the user's message and then beats.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.test import Client
from rest_framework_simplejwt.tokens import RefreshToken
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from conversations.stream_access import StreamAccess
from somaagent.identity import scopes as sc
from somaagent.identity.apikeys import api_key_revoke
from somaagent.identity.principal import principal_for_key
from somaagent.models import ApiKey, Membership
from tests.conftest import make_tenant_key
from tests.live import LiveSystem
from tests.somaagent.conftest import new_user

pytestmark = pytest.mark.integration
HEARTBEAT = 1.0
ENDS_WITHIN = 3 * HEARTBEAT + 5  # two heartbeats at most, and the server's own pace


@pytest.fixture(scope="module")
def web(django_db_setup, django_db_blocker) -> Iterator[LiveSystem]:
    system = LiveSystem(env={"SOMA_SSE_HEARTBEAT_SECONDS": str(HEARTBEAT)})
    try:
        system.start_web()
        yield system
    finally:
        system.stop()


def session_of(web: LiveSystem, key: str) -> str:
    with web.client(key) as c:
        r = c.post("/v1/session/message", json={"message": "hello"})
    assert r.status_code == 202, r.text
    return str(r.json()["session_id"])


def member_token(*, tenant: Any, seconds: int = 300) -> tuple[Any, str]:
    """A member of ``tenant`` and an access token for it, as /v1/auth/token issues them."""
    user = new_user()
    Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.MEMBER)
    refresh = RefreshToken.for_user(user)
    refresh["tenant"] = str(tenant.pk)
    refresh["role"] = Membership.Role.MEMBER
    refresh["scopes"] = sorted(sc.ROLE_SCOPES[Membership.Role.MEMBER])
    access = refresh.access_token
    access.set_exp(lifetime=timedelta(seconds=seconds))
    return user, str(access)


def follow_sse(web: LiveSystem, credential: str, session_id: str, lapse: Any) -> tuple[float, list[str]]:
    """Open the stream, wait for its first event, ``lapse()``; the seconds until the stream
    ended and its frames after the lapse."""
    frames: list[str] = []
    lapsed_at = None
    with httpx.stream(
        "GET",
        f"{web.url}/v1/sessions/{session_id}/stream",
        headers={"Authorization": f"Bearer {credential}"},
        timeout=httpx.Timeout(60, read=60),
    ) as response:
        assert response.status_code == 200, response.read()
        frame: list[str] = []
        for line in response.iter_lines():
            if line:
                frame.append(line)
                continue
            text = "\n".join(frame)
            frame = []
            if lapsed_at is None and text.startswith("id:"):
                lapse()
                lapsed_at = time.monotonic()
            elif lapsed_at is not None:
                frames.append(text)
            if lapsed_at is not None and time.monotonic() - lapsed_at > 60:
                break
    assert lapsed_at is not None
    return time.monotonic() - lapsed_at, frames


def error_of(frames: list[str]) -> dict[str, Any]:
    last = frames[-1]
    assert last.startswith("event: error\ndata: "), frames
    return json.loads(last.split("data: ", 1)[1])


def test_sse_ends_with_an_error_frame_when_the_key_is_revoked(web, live_db) -> None:
    tk = make_tenant_key()
    sid = session_of(web, tk.key)
    took, frames = follow_sse(web, tk.key, sid, lambda: api_key_revoke(prefix=tk.key.split("_")[1]))
    assert took < ENDS_WITHIN
    error = error_of(frames)
    assert error["status"] == 401 and error["error"]["code"] == "key_revoked"


def test_sse_ends_when_the_jwt_expires(web, live_db) -> None:
    tk = make_tenant_key()
    _, token = member_token(tenant=tk.tenant, seconds=5)
    sid = session_of(web, token)  # a member streams the sessions they started
    took, frames = follow_sse(web, token, sid, lambda: None)
    assert took < 5 + ENDS_WITHIN
    assert error_of(frames)["error"]["code"] == "token_expired"


def test_sse_ends_when_the_user_is_deactivated(web, live_db) -> None:
    tk = make_tenant_key()
    user, token = member_token(tenant=tk.tenant)
    with web.client(token) as c:
        sid = c.post("/v1/session/message", json={"message": "mine"}).json()["session_id"]

    def deactivate() -> None:
        user.is_active = False
        user.save(update_fields=["is_active"])

    took, frames = follow_sse(web, token, sid, deactivate)
    assert took < ENDS_WITHIN
    assert error_of(frames)["error"]["code"] == "account_deactivated"


def ws_frames_after(
    web: LiveSystem, credential: str, session_id: str, lapse: Any
) -> tuple[float, list[Any], int]:
    """The frames a socket opened with ``credential`` got after ``lapse()``, the seconds until it
    closed, its close code."""
    return socket_frames_after(web, session_id, {"Authorization": f"Bearer {credential}"}, lapse)


def socket_frames_after(
    web: LiveSystem, session_id: str, headers: dict[str, str], lapse: Any
) -> tuple[float, list[Any], int]:
    """The same for a socket opened with ``headers``."""
    url = f"ws://127.0.0.1:{web.port}/ws/sessions/{session_id}/?after=0"
    frames: list[Any] = []
    with connect(url, additional_headers=headers, open_timeout=30) as ws:
        first = json.loads(ws.recv(timeout=30))
        assert first["type"] == "user.message"
        lapse()
        lapsed_at = time.monotonic()
        try:
            while time.monotonic() - lapsed_at < 60:
                frames.append(json.loads(ws.recv(timeout=60)))
        except ConnectionClosed:
            pass
        took = time.monotonic() - lapsed_at
        code = ws.close_code
    assert code is not None
    return took, frames, code


def test_ws_ends_with_an_error_frame_when_the_key_is_revoked(web, live_db) -> None:
    tk = make_tenant_key()
    sid = session_of(web, tk.key)
    took, frames, code = ws_frames_after(
        web, tk.key, sid, lambda: api_key_revoke(prefix=tk.key.split("_")[1])
    )
    assert took < ENDS_WITHIN and code == 4401
    assert frames[-1]["type"] == "error" and frames[-1]["error"]["code"] == "key_revoked"


def test_ws_ends_when_the_membership_is_removed(web, live_db) -> None:
    tk = make_tenant_key()
    user, token = member_token(tenant=tk.tenant)
    with web.client(token) as c:
        sid = c.post("/v1/session/message", json={"message": "mine"}).json()["session_id"]
    memberships = Membership.objects.filter(user=user)  # of this tenant alone: the user is new
    took, frames, code = ws_frames_after(web, token, sid, lambda: memberships.delete())
    assert took < ENDS_WITHIN and code == 4401
    assert frames[-1] == {
        "type": "error",
        "ref": None,
        "status": 401,
        "error": {
            "code": "membership_removed",
            "message": "You are no longer a member of this tenant.",
            "details": {},
        },
    }


def _member_session(web: LiveSystem, token: str) -> str:
    with web.client(token) as c:
        return str(c.post("/v1/session/message", json={"message": "mine"}).json()["session_id"])


def _deactivate(user: Any) -> None:
    user.is_active = False
    user.save(update_fields=["is_active"])


def test_sse_ends_when_the_membership_is_removed(web, live_db) -> None:
    user, token = member_token(tenant=make_tenant_key().tenant)
    sid = _member_session(web, token)
    took, frames = follow_sse(web, token, sid, lambda: Membership.objects.filter(user=user).delete())
    assert took < ENDS_WITHIN
    assert error_of(frames)["error"]["code"] == "membership_removed"


def test_ws_ends_when_the_jwt_expires(web, live_db) -> None:
    _, token = member_token(tenant=make_tenant_key().tenant, seconds=5)
    sid = _member_session(web, token)
    took, frames, code = ws_frames_after(web, token, sid, lambda: None)
    assert took < 5 + ENDS_WITHIN and code == 4401
    assert frames[-1]["type"] == "error" and frames[-1]["error"]["code"] == "token_expired"


def test_ws_ends_when_the_user_is_deactivated(web, live_db) -> None:
    user, token = member_token(tenant=make_tenant_key().tenant)
    sid = _member_session(web, token)
    took, frames, code = ws_frames_after(web, token, sid, lambda: _deactivate(user))
    assert took < ENDS_WITHIN and code == 4401
    assert frames[-1]["type"] == "error" and frames[-1]["error"]["code"] == "account_deactivated"


def test_a_web_chat_socket_ends_when_its_user_is_deactivated(web, live_db) -> None:
    """The web chat's socket, opened with the login cookie: the same re-check."""
    user, token = member_token(tenant=make_tenant_key().tenant)
    sid = _member_session(web, token)
    browser = Client()
    browser.force_login(user)
    headers = {"Cookie": f"sessionid={browser.cookies['sessionid'].value}", "Origin": "http://127.0.0.1"}
    took, frames, code = socket_frames_after(web, sid, headers, lambda: _deactivate(user))
    assert took < ENDS_WITHIN and code == 4401
    assert frames[-1]["type"] == "error" and frames[-1]["error"]["code"] == "account_deactivated"


def test_a_busy_stream_is_checked_between_events_too(live_db) -> None:
    tk = make_tenant_key()
    key = ApiKey.objects.get(prefix=tk.key.split("_")[1])
    access = StreamAccess(principal=principal_for_key(key), session_id=uuid.uuid4(), interval=0.3)
    api_key_revoke(prefix=key.prefix)

    async def events() -> list[Any]:
        seen = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # an event every 50 ms: never a heartbeat
            refused = await access.refusal(heartbeat=False)
            seen.append(refused)
            if refused is not None:
                break
            await asyncio.sleep(0.05)
        return seen

    seen = async_to_sync(events)()
    assert seen[0] is None  # the check is not run for every event …
    assert seen[-1] is not None and seen[-1].code == "key_revoked"  # … but within the interval
    assert len(seen) <= 0.3 / 0.05 + 2


def test_while_the_database_is_away_a_stream_goes_on_for_a_grace_period(live_db, monkeypatch) -> None:
    from django.db import OperationalError

    from conversations import stream_access

    tk = make_tenant_key()
    key = ApiKey.objects.get(prefix=tk.key.split("_")[1])
    access = StreamAccess(principal=principal_for_key(key), session_id=uuid.uuid4(), interval=0.1, grace=0.4)

    async def database_away(**_: Any) -> None:
        raise OperationalError("couldn't get a connection after 1.50 sec")

    monkeypatch.setattr(stream_access, "_access_revoked_async", database_away)

    async def heartbeats() -> list[Any]:
        seen = []
        for _ in range(12):  # 0.6 s of heartbeats, against a grace of 0.4 s
            seen.append(await access.refusal(heartbeat=True))
            await asyncio.sleep(0.05)
        return seen

    seen = async_to_sync(heartbeats)()
    assert seen[0] is None, "a check that cannot be made does not end the stream at once"
    assert seen[-1] is not None and seen[-1].code == "database_unavailable", "but not for ever"
