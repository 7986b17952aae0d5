"""The WebSocket stream over a real ASGI server (uvicorn) with a real worker and the stub model."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from conversations.models import Turn
from tests.live import TERMINAL, wait_until

pytestmark = pytest.mark.integration


def ws_url(system: Any, session_id: str, after: int | str = 0) -> str:
    return f"ws://127.0.0.1:{system.port}/ws/sessions/{session_id}/?after={after}"


def open_ws(system: Any, session_id: str, key: str, after: int | str = 0) -> ClientConnection:
    return connect(
        ws_url(system, session_id, after),
        additional_headers={"Authorization": f"Bearer {key}"},
        open_timeout=30,
    )


def frames_until(ws: ClientConnection, predicate: Any, timeout: float = 60) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if frame["type"] == "heartbeat":
            continue
        frames.append(frame)
        if predicate(frame):
            return frames


def accept(system: Any, key: str, message: str) -> dict[str, Any]:
    with system.client(key) as c:
        r = c.post("/v1/session/message", json={"message": message})
    assert r.status_code == 202, r.text
    return r.json()


def test_a_reply_streams_over_the_socket_in_order(live_system, tenant_key):
    accepted = accept(live_system, tenant_key.key, "[[tokens=30]]")
    with open_ws(live_system, accepted["session_id"], tenant_key.key) as ws:
        events = frames_until(ws, lambda f: f["type"] in TERMINAL)
    assert events[0]["type"] == "user.message" and events[0]["event_id"] == accepted["event_id"]
    assert events[1]["type"] == "assistant.started" and events[-1]["type"] == "assistant.final"
    text = "".join(e["data"]["text"] for e in events if e["type"] == "assistant.delta")
    assert text == events[-1]["data"]["message"] == "".join(f"t{i} " for i in range(30))
    cursors = [int(e["id"]) for e in events]
    assert cursors == list(range(1, len(cursors) + 1))


def test_subprotocol_key_and_message_frames_on_a_real_server(live_system, tenant_key):
    first = accept(live_system, tenant_key.key, "[[tokens=2]]")
    sid = first["session_id"]
    with connect(
        ws_url(live_system, sid), subprotocols=["soma.v1", f"bearer.{tenant_key.key}"], open_timeout=30
    ) as ws:
        assert ws.subprotocol == "soma.v1"
        frames_until(ws, lambda f: f["type"] in TERMINAL)
        ws.send(json.dumps({"type": "message", "message": "again [[tokens=4]]", "ref": "r1"}))
        frames = frames_until(
            ws, lambda f: f["type"] == "assistant.final" and f["data"]["message"] == "t0 t1 t2 t3 "
        )
    ack = next(f for f in frames if f["type"] == "ack")
    assert ack["ref"] == "r1" and ack["status"] == 202 and ack["body"]["session_id"] == sid


@pytest.mark.parametrize(
    "case,status,code",
    [("no-credentials", 401, "unauthenticated"), ("bad-key", 401, "unauthenticated"),
     ("other-tenant", 404, "not_found"), ("bad-cursor", 400, "validation_error"),
     ("unknown-path", 404, "not_found")],
)  # fmt: skip
def test_refused_handshakes_get_the_http_status_and_error_body(
    live_system, tenant_key, other_tenant_key, case, status, code
):
    theirs = accept(live_system, other_tenant_key.key, "[[tokens=1]]")["session_id"]
    mine = accept(live_system, tenant_key.key, "[[tokens=1]]")["session_id"]
    url, headers = ws_url(live_system, mine), {"Authorization": f"Bearer {tenant_key.key}"}
    if case == "no-credentials":
        headers = {"Origin": live_system.url}
    elif case == "bad-key":
        headers = {"Authorization": "Bearer soma_nope"}
    elif case == "other-tenant":
        url = ws_url(live_system, theirs)
    elif case == "bad-cursor":
        url = ws_url(live_system, mine, after="x")
    else:
        url = f"ws://127.0.0.1:{live_system.port}/ws/elsewhere/"
    with pytest.raises(InvalidStatus) as refused:
        connect(url, additional_headers=headers, open_timeout=30)
    response = refused.value.response
    assert response.status_code == status
    assert json.loads(response.body)["error"]["code"] == code


def test_a_login_cookie_from_a_foreign_origin_is_refused(live_system):
    with pytest.raises(InvalidStatus) as refused:
        connect(
            ws_url(live_system, "7b0c5a52-9d1e-4d2f-8f8e-0c1b2a3d4e5f"),
            additional_headers={"Origin": "http://evil.example", "Cookie": "sessionid=whatever"},
            open_timeout=30,
        )
    assert refused.value.response.status_code == 403


def test_closing_the_socket_never_stops_the_reply_and_the_cursor_resumes_it(live_system, tenant_key):
    accepted = accept(live_system, tenant_key.key, "[[tokens=60]] [[delay=0.03]]")
    sid = accepted["session_id"]
    with open_ws(live_system, sid, tenant_key.key) as ws:
        first = frames_until(ws, lambda f: f["type"] == "assistant.delta" and f["data"]["index"] >= 3)
    turn = wait_until(
        lambda: Turn.objects.filter(pk=accepted["turn_id"], status="completed").first(),
        timeout=60,
        what="turn",
    )
    assert turn.usage["completion_tokens"] == 60
    with open_ws(live_system, sid, tenant_key.key, after=first[-1]["id"]) as ws:
        rest = frames_until(ws, lambda f: f["type"] in TERMINAL)
    whole = first + rest
    cursors = [int(e["id"]) for e in whole]
    assert cursors == list(range(1, len(cursors) + 1)), "gap or duplicate"
    text = "".join(e["data"]["text"] for e in whole if e["type"] == "assistant.delta")
    assert text == whole[-1]["data"]["message"]


def test_static_files_are_served_under_asgi(live_system):
    with live_system.client() as c:
        js = c.get("/static/webchat/markdown.js")
        css = c.get("/static/admin/css/base.css")
        missing = c.get("/static/webchat/nope.js")
    assert js.status_code == 200 and "SomaMarkdown" in js.text
    assert js.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert css.status_code == 200
    assert missing.status_code == 404


def test_an_open_socket_counts_as_an_active_websocket_stream(live_system, tenant_key):
    from tests.somaagent.support import scrape, value

    metrics = f"{live_system.url}/metrics"

    def active() -> float:
        return value(scrape(metrics), "soma_active_streams", transport="websocket") or 0

    before = active()
    accepted = accept(live_system, tenant_key.key, "[[tokens=2]]")
    with open_ws(live_system, accepted["session_id"], tenant_key.key) as ws:
        frames_until(ws, lambda f: f["type"] in TERMINAL)
        wait_until(lambda: active() == before + 1, timeout=20, what="one more active WebSocket stream")
    wait_until(lambda: active() == before, timeout=20, what="the stream to stop counting once closed")
