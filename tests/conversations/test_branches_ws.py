"""Branches over the WebSocket (issue 18), on a real server with a real worker and the stub model:
a message frame with ``parent_event_id`` goes on that branch and its reply streams there, a socket
reopened at its cursor mid-reply gets the rest once, the same idempotency key answers the same,
and bad parents are error frames that change nothing."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from conversations.models import SessionEvent, Turn
from tests.conversations.support import base_and_kept
from tests.conversations.test_ws_live import frames_until, open_ws
from tests.live import TERMINAL, LiveSystem

pytestmark = pytest.mark.integration


def test_a_message_frame_starts_a_branch_that_streams_and_resumes_over_the_socket(
    live_system: LiveSystem, tenant_key: Any
) -> None:
    key, tag = tenant_key.key, uuid.uuid4().hex[:8]
    root, base, second, kept = base_and_kept(live_system, key, tag)
    sid = root["session_id"]

    frame = {
        "type": "message",
        "message": f"[[tokens=40]] [[delay=0.03]] {tag} edited",
        "parent_event_id": base["event_id"],
        "idempotency_key": f"ws-{tag}",
        "ref": "r1",
    }
    with open_ws(live_system, sid, key, after=kept["id"]) as ws:
        ws.send(json.dumps(frame))
        seen = frames_until(ws, lambda f: f["type"] == "assistant.delta" and f["data"]["index"] >= 3)
        ws.send(json.dumps({**frame, "ref": "r2"}))  # the same key and body: the same answer
        seen += frames_until(ws, lambda f: f.get("ref") == "r2")
    acks = {f["ref"]: f for f in seen if f["type"] == "ack"}
    assert acks["r1"]["status"] == 202 and acks["r2"]["body"] == acks["r1"]["body"]
    message_id = acks["r1"]["body"]["event_id"]
    message = next(f for f in seen if f.get("event_id") == message_id)
    assert message["parent_id"] == base["event_id"], "the message goes under the event it names"
    started = next(f for f in seen if f["type"] == "assistant.started")
    assert started["parent_id"] == message_id
    last = max(int(f["id"]) for f in seen if "id" in f and f["type"] != "ack")

    # Reopened at the cursor mid-reply: the rest of this branch's reply, once.
    with open_ws(live_system, sid, key, after=last) as ws:
        rest = frames_until(ws, lambda f: f["type"] in TERMINAL and f["data"].get("reply_to") == message_id)
    deltas = [f for f in seen + rest if f["type"] == "assistant.delta"]
    assert [d["data"]["index"] for d in deltas] == list(range(len(deltas)))
    assert rest[-1]["data"]["message"] == "".join(f"t{i} " for i in range(40))
    assert rest[-1]["parent_id"] is not None
    assert Turn.objects.filter(user_event__event_id=message_id).count() == 1

    with live_system.client(key) as c:
        active = c.get(f"/v1/sessions/{sid}/events").json()
    assert active["events"][-1]["event_id"] == rest[-1]["event_id"]
    assert active["siblings"][base["event_id"]] == [second["event_id"], message_id]

    # A parent that is no event of this chat: an error frame, nothing written.
    before = SessionEvent.objects.filter(session_id=sid).count()
    with open_ws(live_system, sid, key, after=rest[-1]["id"]) as ws:
        for ref, parent in (("b1", "nope"), ("b2", str(uuid.uuid4()))):
            ws.send(json.dumps({"type": "message", "message": "x", "parent_event_id": parent, "ref": ref}))
        errors = frames_until(ws, lambda f: f.get("ref") == "b2")
    refused = {f["ref"]: f["status"] for f in errors if f["type"] == "error"}
    assert refused == {"b1": 400, "b2": 404}
    assert SessionEvent.objects.filter(session_id=sid).count() == before
