"""Cancelling: the running reply ends with ``assistant.cancelled``; queued turns end too."""

from __future__ import annotations

import pytest

from conversations.models import Turn
from tests.conversations.support import assert_gap_free, persisted_types, send
from tests.live import TERMINAL, read_stream, wait_until

pytestmark = pytest.mark.integration

SLOW = "[[tokens=200]] [[delay=0.05]]"
FULL = "".join(f"t{i} " for i in range(200))


def _cancel(system, key, session_id):
    with system.client(key) as c:
        r = c.post(f"/v1/sessions/{session_id}/cancel")
    assert r.status_code == 202, r.text
    return r.json()


def test_cancel_the_running_reply(live_system, tenant_key):
    accepted = send(live_system, tenant_key.key, f"go on {SLOW}")
    sid = accepted["session_id"]
    read_stream(live_system, tenant_key.key, sid, until=lambda e: e.get("data", {}).get("index") == 2)

    assert _cancel(live_system, tenant_key.key, sid)["cancelled_turns"] == [accepted["turn_id"]]

    events = read_stream(live_system, tenant_key.key, sid)
    assert_gap_free(events)
    types = [e["type"] for e in events]
    assert types[-1] == "assistant.cancelled" and "assistant.final" not in types, types
    streamed = "".join(e["data"]["text"] for e in events if e["type"] == "assistant.delta")
    partial = events[-1]["data"]["partial"]
    # The partial is what the model had said when it stopped: at least what was streamed.
    assert streamed and partial.startswith(streamed) and FULL.startswith(partial) and partial != FULL
    turn = wait_until(
        lambda: Turn.objects.filter(pk=accepted["turn_id"], status=Turn.Status.CANCELLED).first(),
        timeout=10,
        what="turn cancelled",
    )
    assert turn.lease_owner == ""
    assert persisted_types(sid).count("assistant.cancelled") == 1


def test_cancel_ends_the_queued_turn_too_and_the_session_goes_on(live_system, tenant_key):
    first = send(live_system, tenant_key.key, f"first {SLOW}")
    sid = first["session_id"]
    second = send(live_system, tenant_key.key, "second [[tokens=3]]", session_id=sid)
    wait_until(
        lambda: Turn.objects.get(pk=first["turn_id"]).status == Turn.Status.RUNNING,
        timeout=30,
        what="first turn to run",
    )
    assert Turn.objects.get(pk=second["turn_id"]).status == Turn.Status.QUEUED

    cancelled = _cancel(live_system, tenant_key.key, sid)["cancelled_turns"]
    assert sorted(cancelled) == sorted([first["turn_id"], second["turn_id"]])

    terminal_count = 0

    def two_terminals(e):
        nonlocal terminal_count
        terminal_count += e["type"] in TERMINAL
        return terminal_count == 2

    events = read_stream(live_system, tenant_key.key, sid, until=two_terminals)
    assert [e["type"] for e in events if e["type"] in TERMINAL] == ["assistant.cancelled"] * 2
    started = [e["data"]["reply_to"] for e in events if e["type"] == "assistant.started"]
    assert started == [first["event_id"]], "the queued turn never started"
    statuses = set(Turn.objects.filter(session_id=sid).values_list("status", flat=True))
    assert statuses == {Turn.Status.CANCELLED}

    third = send(live_system, tenant_key.key, "third [[tokens=2]]", session_id=sid)
    events = read_stream(live_system, tenant_key.key, sid, after=int(third["stream"]["sse"].split("=")[-1]))
    assert events[-1]["type"] == "assistant.final" and events[-1]["data"]["message"] == "t0 t1 "
    assert persisted_types(sid).count("assistant.final") == 1


def test_cancel_with_nothing_running_changes_nothing(live_system, tenant_key):
    accepted = send(live_system, tenant_key.key, "[[tokens=1]]")
    read_stream(live_system, tenant_key.key, accepted["session_id"])
    before = persisted_types(accepted["session_id"])
    assert _cancel(live_system, tenant_key.key, accepted["session_id"])["cancelled_turns"] == []
    assert persisted_types(accepted["session_id"]) == before
    assert Turn.objects.get(pk=accepted["turn_id"]).status == Turn.Status.COMPLETED
