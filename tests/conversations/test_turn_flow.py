"""End to end over real processes: accept → worker → stub model → SSE, and resuming the stream."""

from __future__ import annotations

import threading

import httpx
import pytest

from conversations.models import SessionEvent, Turn
from tests.live import TERMINAL, read_stream, wait_until

pytestmark = pytest.mark.integration


def send(system, key, message, **extra):
    with system.client(key) as c:
        r = c.post("/v1/session/message", json={"message": message, **extra})
    assert r.status_code == 202, r.text
    return r.json()


def test_message_streams_a_reply(live_system, tenant_key):
    accepted = send(live_system, tenant_key.key, "hello there [[tokens=40]]")
    assert set(accepted) >= {"session_id", "event_id", "stream"}
    assert accepted["stream"]["sse"].startswith(f"/v1/sessions/{accepted['session_id']}/stream")

    events = read_stream(live_system, tenant_key.key, accepted["session_id"])
    types = [e["type"] for e in events]
    assert types[0] == "user.message" and events[0]["event_id"] == accepted["event_id"]
    assert types[1] == "assistant.started"
    assert events[1]["data"]["reply_to"] == accepted["event_id"]
    assert events[1]["data"]["restart"] is False
    assert types[-1] == "assistant.final"
    assert all(t == "assistant.delta" for t in types[2:-1]) and len(types) > 3
    text = "".join(e["data"]["text"] for e in events if e["type"] == "assistant.delta")
    final = events[-1]["data"]
    assert text == final["message"] == "".join(f"t{i} " for i in range(40))
    assert final["usage"]["completion_tokens"] == 40
    assert set(final["analysis"]) >= {"intent", "sentiment", "tags"}
    cursors = [int(e["id"]) for e in events]
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)
    for e in events:
        assert set(e) == {"id", "event_id", "session_id", "parent_id", "type", "role", "occurred_at", "data"}


def test_reconnect_mid_reply_gets_exactly_what_was_missed(live_system, tenant_key):
    accepted = send(live_system, tenant_key.key, "slow please [[tokens=60]] [[delay=0.03]]")
    sid = accepted["session_id"]
    first = read_stream(live_system, tenant_key.key, sid, max_events=6)
    assert first[-1]["type"] in ("assistant.delta", "assistant.started")
    rest = read_stream(live_system, tenant_key.key, sid, last_event_id=first[-1]["id"])
    whole = first + rest
    cursors = [int(e["id"]) for e in whole]
    assert cursors == list(range(cursors[0], cursors[0] + len(cursors))), "gap or duplicate"
    text = "".join(e["data"]["text"] for e in whole if e["type"] == "assistant.delta")
    assert whole[-1]["type"] == "assistant.final"
    assert text == whole[-1]["data"]["message"]


def test_replay_after_the_turn_ended_with_after_param(live_system, tenant_key):
    accepted = send(live_system, tenant_key.key, "[[tokens=20]]")
    sid = accepted["session_id"]
    full = read_stream(live_system, tenant_key.key, sid)
    again = read_stream(live_system, tenant_key.key, sid, after=3)
    assert [e["id"] for e in again] == [e["id"] for e in full if int(e["id"]) > 3]


def test_reply_keeps_generating_when_the_client_leaves(live_system, tenant_key):
    accepted = send(live_system, tenant_key.key, "[[tokens=30]] [[delay=0.02]]")
    read_stream(live_system, tenant_key.key, accepted["session_id"], max_events=3)
    turn = wait_until(
        lambda: Turn.objects.filter(pk=accepted["turn_id"], status="completed").first(),
        timeout=30,
        what="turn to complete",
    )
    assert turn.usage["completion_tokens"] == 30


def test_second_message_in_session_sees_history_and_runs_after_first(live_system, tenant_key, llm_stub):
    first = send(live_system, tenant_key.key, "my name is Ada [[delay=0.01]]")
    second = send(live_system, tenant_key.key, "what is my name?", session_id=first["session_id"])
    assert second["session_id"] == first["session_id"]
    events = read_stream(
        live_system,
        tenant_key.key,
        first["session_id"],
        until=lambda e: e["type"] in TERMINAL and e["data"].get("message", "").endswith("name?"),
    )
    finals = [e for e in events if e["type"] == "assistant.final"]
    assert len(finals) == 2
    started = [e for e in events if e["type"] == "assistant.started"]
    assert [s["data"]["reply_to"] for s in started] == [first["event_id"], second["event_id"]]
    # the second turn started only after the first ended
    assert int(started[1]["id"]) > int(finals[0]["id"])
    with httpx.Client() as c:
        bodies = c.get(f"{llm_stub.url}/_requests").json()
    prompt = next(b for b in bodies if b["messages"][-1]["content"] == "what is my name?")
    assert {"role": "user", "content": "my name is Ada [[delay=0.01]]"} in prompt["messages"]


def test_concurrent_readers_see_the_same_events(live_system, tenant_key):
    accepted = send(live_system, tenant_key.key, "[[tokens=50]] [[delay=0.01]]")
    results: list[list[str]] = [[], [], []]

    def follow(i: int) -> None:
        results[i] = [e["id"] for e in read_stream(live_system, tenant_key.key, accepted["session_id"])]

    threads = [threading.Thread(target=follow, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results[0] and results[0] == results[1] == results[2]


def test_events_endpoint_pages_persisted_events(live_system, tenant_key):
    accepted = send(live_system, tenant_key.key, "[[tokens=5]]")
    read_stream(live_system, tenant_key.key, accepted["session_id"])
    with live_system.client(tenant_key.key) as c:
        page1 = c.get(f"/v1/sessions/{accepted['session_id']}/events", params={"limit": 2}).json()
        page2 = c.get(
            f"/v1/sessions/{accepted['session_id']}/events",
            params={"after": page1["next_cursor"], "limit": 2},
        ).json()
    types = [e["type"] for e in page1["events"] + page2["events"]]
    assert types == ["user.message", "assistant.started", "assistant.final"]
    assert page2["next_cursor"] is None
    assert SessionEvent.objects.filter(session_id=accepted["session_id"]).count() == 3


def test_sse_stream_of_unknown_session_is_404(live_system, tenant_key):
    with live_system.client(tenant_key.key) as c:
        r = c.get("/v1/sessions/7b0c5a52-9d1e-4d2f-8f8e-0c1b2a3d4e5f/stream")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_sse_requires_credentials(live_system, tenant_key):
    accepted = send(live_system, tenant_key.key, "[[tokens=1]]")
    with httpx.stream("GET", f"{live_system.url}/v1/sessions/{accepted['session_id']}/stream") as r:
        assert r.status_code == 401
    with httpx.stream(
        "GET",
        f"{live_system.url}/v1/sessions/{accepted['session_id']}/stream",
        headers={"Authorization": "Bearer soma_nope"},
    ) as r:
        assert r.status_code == 401
