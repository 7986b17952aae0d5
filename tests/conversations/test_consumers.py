"""The WebSocket consumer in-process (Channels' WebsocketCommunicator) on the real database and Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing.websocket import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client

from conversations.models import EventType, Session, SessionEvent, Turn
from conversations.services.accept import MessageInput, message_accept
from conversations.services.events import delta_cursor_take, delta_publish, event_append
from somaagent.asgi import application
from somaagent.identity.principal import DEFAULT_TENANT_NAME
from somaagent.models import Tenant
from tests.conftest import make_tenant_key

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
WAIT = 30


def run(coro_fn: Callable[..., Any]) -> Any:
    return async_to_sync(coro_fn)()


def communicator(
    path: str, *, key: str | None = None, headers: list[tuple[bytes, bytes]] | None = None, **kw: Any
) -> WebsocketCommunicator:
    hdrs = list(headers or [])
    if key is not None:
        hdrs.append((b"authorization", f"Bearer {key}".encode()))
    return WebsocketCommunicator(application, path, headers=hdrs, **kw)


class Reader:
    """Collects every frame; ``until`` returns the first not yet matched frame that satisfies a test."""

    def __init__(self, comm: WebsocketCommunicator) -> None:
        self.comm = comm
        self.frames: list[dict[str, Any]] = []
        self.matched: set[int] = set()

    async def until(
        self, predicate: Callable[[dict[str, Any]], bool], *, timeout: float = WAIT
    ) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        index = 0
        while True:
            while index < len(self.frames):
                if index not in self.matched and predicate(self.frames[index]):
                    self.matched.add(index)
                    return self.frames[index]
                index += 1
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"no matching frame; got {[f.get('type') for f in self.frames]}")
            frame = json.loads(await self.comm.receive_from(timeout=left))
            if frame.get("type") != "heartbeat":
                self.frames.append(frame)

    def events(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if "." in f.get("type", "")]


def accept(tenant: Any, message: str, session_id: Any = None) -> dict[str, Any]:
    return message_accept(
        tenant=tenant,
        data=MessageInput(message=message, session_id=uuid.UUID(session_id) if session_id else None),
    )


@pytest.fixture
def tk():
    return make_tenant_key()


def test_api_key_in_header_replays_the_session(tk):
    sid = accept(tk.tenant, "hello")["session_id"]

    async def go() -> None:
        comm = communicator(f"/ws/sessions/{sid}/", key=tk.key)
        connected, _ = await comm.connect(timeout=WAIT)
        assert connected
        envelope = await Reader(comm).until(lambda f: f["type"] == "user.message")
        assert set(envelope) == {
            "id",
            "event_id",
            "session_id",
            "parent_id",
            "type",
            "role",
            "occurred_at",
            "data",
        }
        assert envelope["session_id"] == sid and envelope["data"]["message"] == "hello"
        await comm.disconnect()

    run(go)


def test_api_key_as_subprotocol_is_answered_with_soma_v1(tk):
    sid = accept(tk.tenant, "hello")["session_id"]

    async def go() -> None:
        comm = communicator(f"/ws/sessions/{sid}/", subprotocols=["soma.v1", f"bearer.{tk.key}"])
        connected, subprotocol = await comm.connect(timeout=WAIT)
        assert connected and subprotocol == "soma.v1"
        await Reader(comm).until(lambda f: f["type"] == "user.message")
        await comm.disconnect()

    run(go)


@pytest.mark.parametrize(
    "headers,subprotocols",
    [
        ([ORIGIN], None),  # nothing at all
        ([ORIGIN, (b"authorization", b"Bearer soma_nope")], None),
        ([ORIGIN, (b"authorization", b"Basic dXNlcjpwdw==")], None),
        ([ORIGIN], ["soma.v1", "bearer.soma_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"]),
    ],
)
def test_unauthenticated_handshake_is_refused_with_4401(tk, headers, subprotocols):
    sid = accept(tk.tenant, "hello")["session_id"]

    async def go() -> None:
        comm = communicator(f"/ws/sessions/{sid}/", headers=headers, subprotocols=subprotocols)
        assert await comm.connect(timeout=WAIT) == (False, 4401)

    run(go)


def test_revoked_key_is_refused(tk):
    from somaagent.identity.apikeys import api_key_revoke

    sid = accept(tk.tenant, "hello")["session_id"]
    api_key_revoke(prefix=tk.key.split("_")[1])

    async def go() -> None:
        assert await communicator(f"/ws/sessions/{sid}/", key=tk.key).connect(timeout=WAIT) == (False, 4401)

    run(go)


def test_other_tenants_session_unknown_ids_and_paths_are_4404(tk):
    other = make_tenant_key()
    theirs = accept(other.tenant, "secret")["session_id"]

    async def go() -> None:
        for path in (
            f"/ws/sessions/{theirs}/",
            f"/ws/sessions/{uuid.uuid4()}/",
            "/ws/sessions/not-a-uuid/",
            "/ws/elsewhere/",
        ):
            assert await communicator(path, key=tk.key).connect(timeout=WAIT) == (False, 4404), path

    run(go)


def test_bad_cursor_is_4400(tk):
    sid = accept(tk.tenant, "hello")["session_id"]

    async def go() -> None:
        for after in ("abc", "-1"):
            comm = communicator(f"/ws/sessions/{sid}/?after={after}", key=tk.key)
            assert await comm.connect(timeout=WAIT) == (False, 4400)

    run(go)


def _login_cookie(user: Any) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def test_session_cookie_user_without_membership_chats_in_the_default_tenant():
    user = get_user_model().objects.create_user(username=f"u{uuid.uuid4().hex[:8]}", password="pw-12345678")
    cookie = _login_cookie(user)
    default, _ = Tenant.objects.get_or_create(name=DEFAULT_TENANT_NAME)
    sid = accept(default, "from the page")["session_id"]
    Session.objects.filter(pk=sid).update(created_by=user)  # started by this user on the page
    elsewhere = accept(make_tenant_key().tenant, "not yours")["session_id"]

    async def go() -> None:
        comm = communicator(f"/ws/sessions/{sid}/", headers=[ORIGIN, (b"cookie", cookie)])
        connected, _ = await comm.connect(timeout=WAIT)
        assert connected
        await Reader(comm).until(lambda f: f["type"] == "user.message")
        await comm.disconnect()
        comm = communicator(f"/ws/sessions/{elsewhere}/", headers=[ORIGIN, (b"cookie", cookie)])
        assert await comm.connect(timeout=WAIT) == (False, 4404)

    run(go)


def test_session_cookie_from_a_foreign_origin_is_refused():
    user = get_user_model().objects.create_user(username=f"u{uuid.uuid4().hex[:8]}", password="pw-12345678")
    cookie = _login_cookie(user)
    default, _ = Tenant.objects.get_or_create(name=DEFAULT_TENANT_NAME)
    sid = accept(default, "hi")["session_id"]

    async def go() -> None:
        for origin in (b"http://evil.example", None):
            headers = [(b"cookie", cookie)] + ([(b"origin", origin)] if origin else [])
            connected, _ = await communicator(f"/ws/sessions/{sid}/", headers=headers).connect(timeout=WAIT)
            assert not connected

    run(go)


def _append(sid: str, type: str, data: dict[str, Any]) -> int:
    with transaction.atomic():
        return event_append(session_id=sid, type=type, data=data).seq


def _delta(sid: str, data: dict[str, Any]) -> dict[str, Any]:
    return delta_publish(session_id=sid, seq=delta_cursor_take(session_id=sid), data=data)


def test_replays_exactly_the_events_after_the_cursor_then_delivers_live_ones(tk):
    sid = accept(tk.tenant, "first")["session_id"]
    # A user.message only, so no worker can add to this session; build a turn by hand.
    user_event = SessionEvent.objects.get(session_id=sid, type=EventType.USER_MESSAGE)
    seq_started = _append(
        sid, EventType.ASSISTANT_STARTED, {"model": "m", "reply_to": str(user_event.event_id)}
    )
    delta = _delta(sid, {"text": "Hel", "index": 0})
    after = user_event.seq

    async def go() -> None:
        comm = communicator(f"/ws/sessions/{sid}/?after={after}", key=tk.key)
        assert (await comm.connect(timeout=WAIT))[0]
        reader = Reader(comm)
        await reader.until(lambda f: f["type"] == "assistant.delta")
        assert [int(f["id"]) for f in reader.events()] == [seq_started, int(delta["id"])]
        await sync_to_async(_delta)(sid, {"text": "lo", "index": 1})
        await sync_to_async(_append)(sid, EventType.ASSISTANT_FINAL, {"message": "Hello", "model": "m"})
        await reader.until(lambda f: f["type"] == "assistant.final")
        events = reader.events()
        assert [f["type"] for f in events] == [
            "assistant.started",
            "assistant.delta",
            "assistant.delta",
            "assistant.final",
        ]
        assert "".join(f["data"]["text"] for f in events if f["type"] == "assistant.delta") == "Hello"
        ids = [int(f["id"]) for f in events]
        assert ids == list(range(after + 1, after + 5))
        await comm.disconnect()

    run(go)


def test_message_frame_goes_through_accept_with_idempotency(tk):
    sid = accept(tk.tenant, "first")["session_id"]

    async def go() -> None:
        comm = communicator(f"/ws/sessions/{sid}/?after=1", key=tk.key)
        assert (await comm.connect(timeout=WAIT))[0]
        reader = Reader(comm)
        frame = {"type": "message", "message": "second", "idempotency_key": "k-1", "ref": "a"}
        await comm.send_json_to(frame)
        ack = await reader.until(lambda f: f["type"] == "ack")
        assert ack["ref"] == "a" and ack["status"] == 202
        assert ack["body"]["session_id"] == sid
        assert ack["body"]["stream"]["ws"].startswith(f"/ws/sessions/{sid}/?after=")
        await comm.send_json_to({**frame, "ref": "b"})
        again = await reader.until(lambda f: f["type"] == "ack")
        assert again["body"] == ack["body"] and again["ref"] == "b"
        await comm.send_json_to({**frame, "message": "changed", "ref": "c"})
        conflict = await reader.until(lambda f: f["type"] == "error")
        assert conflict["status"] == 409 and conflict["error"]["code"] == "idempotency_conflict"
        seen = await reader.until(
            lambda f: f["type"] == "user.message" and f["event_id"] == ack["body"]["event_id"]
        )
        assert seen["data"]["message"] == "second"
        assert len([e for e in reader.events() if e["type"] == "user.message"]) == 1
        await comm.disconnect()

    run(go)
    messages = SessionEvent.objects.filter(session_id=sid, type=EventType.USER_MESSAGE)
    assert [e.payload["message"] for e in messages.order_by("seq")] == ["first", "second"]


def test_cancel_frame_stops_the_turn(tk):
    accepted = accept(tk.tenant, "long one [[tokens=400]] [[delay=0.05]]")
    sid = accepted["session_id"]

    async def go() -> None:
        comm = communicator(f"/ws/sessions/{sid}/", key=tk.key)
        assert (await comm.connect(timeout=WAIT))[0]
        await comm.send_json_to({"type": "cancel", "ref": "x"})
        reader = Reader(comm)
        await reader.until(lambda f: f["type"] == "assistant.cancelled")
        ack = await reader.until(lambda f: f["type"] == "ack")
        assert ack["body"]["cancelled_turns"] == [accepted["turn_id"]]
        await comm.disconnect()

    run(go)
    assert Turn.objects.get(pk=accepted["turn_id"]).status == Turn.Status.CANCELLED


def test_malformed_frames_get_error_frames_and_the_socket_stays_up(tk):
    sid = accept(tk.tenant, "first")["session_id"]
    other_sid = accept(tk.tenant, "other")["session_id"]
    cases: list[tuple[Any, int, str]] = [
        ("not json", 400, "invalid_json"),
        ("[" * 100_000 + "]" * 100_000, 400, "invalid_json"),
        ('{"type": "message", "message": NaN}', 400, "invalid_json"),
        (json.dumps({"type": "message", "message": "a\x00b"}), 400, "validation_error"),
        (json.dumps({"type": "message", "message": "x", "metadata": {"k": "\x00"}}), 400, "validation_error"),
        ("[1, 2]", 400, "malformed_frame"),
        (json.dumps({"type": "dance"}), 400, "unknown_frame_type"),
        (json.dumps({"type": "message"}), 400, "validation_error"),
        (json.dumps({"type": "message", "message": "x", "colour": "red"}), 400, "validation_error"),
        (json.dumps({"type": "message", "message": "x", "session_id": other_sid}), 400, "validation_error"),
        (
            json.dumps({"type": "message", "message": "x", "idempotency_key": "has space"}),
            400,
            "validation_error",
        ),
        (
            json.dumps({"type": "message", "message": "x", "attachments": [str(uuid.uuid4())]}),
            404,
            "not_found",
        ),
        (json.dumps({"type": "message", "message": "x" * 40_000}), 413, "payload_too_large"),
        (json.dumps({"type": "cancel", "now": True}), 400, "validation_error"),
        (json.dumps({"type": "cancel", "ref": 5}), 400, "validation_error"),
        ("x" * 300_000, 413, "payload_too_large"),
        (b"\x00\x01binary", 400, "malformed_frame"),
    ]

    async def go() -> None:
        comm = communicator(f"/ws/sessions/{sid}/?after=1", key=tk.key)
        assert (await comm.connect(timeout=WAIT))[0]
        reader = Reader(comm)
        for payload, status, code in cases:
            if isinstance(payload, bytes):
                await comm.send_to(bytes_data=payload)
            else:
                await comm.send_to(text_data=payload)
            error = await reader.until(lambda f: f["type"] in ("error", "ack"))
            assert error["type"] == "error", payload
            assert (error["status"], error["error"]["code"]) == (status, code), payload
            assert set(error["error"]) == {"code", "message", "details"}
        await comm.send_json_to({"type": "message", "message": "still here", "ref": "ok"})
        ack = await reader.until(lambda f: f["type"] in ("error", "ack"))
        assert ack["type"] == "ack" and ack["ref"] == "ok"
        await comm.disconnect()

    run(go)
    messages = SessionEvent.objects.filter(session_id=sid, type=EventType.USER_MESSAGE)
    assert [e.payload["message"] for e in messages.order_by("seq")] == ["first", "still here"]


@pytest.fixture
def quick_heartbeat(settings):
    settings.SOMA = dataclasses.replace(settings.SOMA, sse_heartbeat_seconds=0.3)


@pytest.mark.parametrize("what", ["session deleted", "key revoked"])
def test_an_open_socket_closes_when_access_ends(tk, quick_heartbeat, what):
    from conversations.selectors import session_get
    from conversations.services.sessions import session_delete
    from somaagent.identity.apikeys import api_key_revoke

    sid = accept(tk.tenant, "hello")["session_id"]

    def end_access() -> None:
        if what == "session deleted":
            session_delete(session=session_get(tenant=tk.tenant, session_id=sid))
        else:
            api_key_revoke(prefix=tk.key.split("_")[1])

    async def go() -> None:
        comm = communicator(f"/ws/sessions/{sid}/", key=tk.key)
        assert (await comm.connect(timeout=WAIT))[0]
        reader = Reader(comm)
        await reader.until(lambda f: f["type"] == "user.message")
        heartbeat = json.loads(await comm.receive_from(timeout=WAIT))
        assert heartbeat == {"type": "heartbeat"}
        await sync_to_async(end_access)()
        while True:
            out = await comm.receive_output(timeout=WAIT)
            if out["type"] == "websocket.close":
                break
        assert out["code"] == (4404 if what == "session deleted" else 4401)

    run(go)


def test_an_error_frame_for_a_refusal_for_now_says_when_to_send_again():
    from django.db import OperationalError

    from conversations.ws_protocol import error_frame
    from somaagent.errors import ValidationFailed

    frame = error_frame(OperationalError("couldn't get a connection"), ref="r1")
    assert frame["status"] == 503 and frame["error"]["code"] == "database_unavailable"
    assert frame["ref"] == "r1" and frame["retry_after"] == 5
    assert "retry_after" not in error_frame(ValidationFailed("no"), ref="r2")
