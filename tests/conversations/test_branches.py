"""Edit and regenerate, as branches (issue 18), end to end over the real web server, worker and
stub model: the old branch is kept, the listing follows a branch, the model sees only its own."""

from __future__ import annotations

import itertools
import threading
import uuid
from typing import Any

import httpx
import pytest

from conversations.models import Turn
from tests.conversations.support import answered, base_and_kept, send
from tests.live import TERMINAL, LiveSystem, read_stream

pytestmark = pytest.mark.integration


def _turn_answered(system: LiveSystem, key: str, sid: str, accepted: dict[str, Any]) -> dict[str, Any]:
    """The terminal event of the turn ``accepted`` names (a regenerated reply has its own)."""
    after = int(accepted["stream"]["sse"].rsplit("=", 1)[1])
    events = read_stream(
        system,
        key,
        sid,
        after=after,
        until=lambda e: e["type"] == "assistant.final" and e["data"].get("reply_to") == accepted["event_id"],
    )
    return events[-1]


def _prompt(stub_url: str, marker: str) -> list[dict[str, Any]]:
    """The messages of the newest model request whose last message holds ``marker``."""
    bodies = [e["body"] for e in httpx.get(f"{stub_url}/_log").json()]
    found = [b["messages"] for b in bodies if marker in str(b["messages"][-1].get("content", ""))]
    assert found, f"the model was never asked about {marker}"
    return found[-1]


def _listing(system: LiveSystem, key: str, sid: str, **params: Any) -> dict[str, Any]:
    with system.client(key) as c:
        r = c.get(f"/v1/sessions/{sid}/events", params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _messages(page: dict[str, Any]) -> list[str]:
    return [
        e["data"]["message"].split("]] ")[-1]
        for e in page["events"]
        if e["type"] in ("user.message", "assistant.final")
    ]


def _assert_one_path(page: dict[str, Any]) -> None:
    """Each listed event's parent is the one listed before it: the page is one branch."""
    events = page["events"]
    for before, event in itertools.pairwise(events):
        assert event["parent_id"] == before["event_id"], (before, event)


def test_editing_a_message_starts_a_branch_and_the_model_sees_only_that_branch(
    live_system: LiveSystem, tenant_key: Any, llm_stub: Any
) -> None:
    key, tag = tenant_key.key, uuid.uuid4().hex[:8]
    first = send(live_system, key, f"[[reply=noted apples]] {tag} I like apples")
    sid = first["session_id"]
    first_reply = answered(live_system, key, sid, first["event_id"])
    second = send(live_system, key, f"[[reply=noted bananas]] {tag} and bananas", session_id=sid)
    answered(live_system, key, sid, second["event_id"])

    # The edit: a new message under the reply the edited one followed.
    edited = send(
        live_system,
        key,
        f"[[reply=noted cherries]] {tag} and cherries",
        session_id=sid,
        parent_event_id=first_reply["event_id"],
    )
    answered(live_system, key, sid, edited["event_id"])
    prompt = _prompt(llm_stub.url, f"{tag} and cherries")
    said = " ".join(str(m["content"]) for m in prompt)
    assert "I like apples" in said and "noted apples" in said
    assert "bananas" not in said, "the model sees only the branch of the message it answers"

    active = _listing(live_system, key, sid)
    assert _messages(active) == [
        f"{tag} I like apples",
        "noted apples",
        f"{tag} and cherries",
        "noted cherries",
    ]
    _assert_one_path(active)
    assert active["events"][0]["parent_id"] is None
    assert active["siblings"] == {first_reply["event_id"]: [second["event_id"], edited["event_id"]]}

    old = _listing(live_system, key, sid, branch=second["event_id"])
    assert _messages(old) == [f"{tag} I like apples", "noted apples", f"{tag} and bananas", "noted bananas"]
    _assert_one_path(old)
    everything = _listing(live_system, key, sid, all=1)
    assert len(_messages(everything)) == 6 and "siblings" not in everything

    # A message sent without parent_event_id continues the active branch.
    more = send(live_system, key, f"[[reply=noted dates]] {tag} and dates", session_id=sid)
    answered(live_system, key, sid, more["event_id"])
    said = " ".join(str(m["content"]) for m in _prompt(llm_stub.url, f"{tag} and dates"))
    assert "cherries" in said and "bananas" not in said
    assert _messages(_listing(live_system, key, sid))[-2:] == [f"{tag} and dates", "noted dates"]


def test_regenerate_adds_a_reply_beside_the_first_and_keeps_it(
    live_system: LiveSystem, tenant_key: Any, llm_stub: Any
) -> None:
    key, tag = tenant_key.key, uuid.uuid4().hex[:8]
    opener = send(live_system, key, f"[[reply=hello]] {tag} hi")
    sid = opener["session_id"]
    answered(live_system, key, sid, opener["event_id"])
    asked = send(live_system, key, f"{tag} tell me a joke", session_id=sid)
    first = answered(live_system, key, sid, asked["event_id"])

    with live_system.client(key) as c:
        r = c.post(
            f"/v1/sessions/{sid}/events/{first['event_id']}/regenerate",
            headers={"Idempotency-Key": f"re-{tag}"},
        )
        again = c.post(
            f"/v1/sessions/{sid}/events/{first['event_id']}/regenerate",
            headers={"Idempotency-Key": f"re-{tag}"},
        )
    assert r.status_code == 202, r.text
    regenerated = r.json()
    assert again.json() == regenerated, "the same Idempotency-Key answers the same and starts nothing"
    assert regenerated["event_id"] == asked["event_id"]
    assert Turn.objects.filter(user_event__event_id=asked["event_id"]).count() == 2
    second = _turn_answered(live_system, key, sid, regenerated)
    assert second["event_id"] != first["event_id"]

    prompts = [
        [m for m in b["body"]["messages"] if m["role"] != "system"]  # recalled memories may differ
        for b in httpx.get(f"{llm_stub.url}/_log").json()
        if f"{tag} tell me a joke" in str(b["body"]["messages"][-1].get("content", ""))
    ]
    assert len(prompts) == 2 and prompts[0] == prompts[1], "the same history, not the first reply"

    active = _listing(live_system, key, sid)
    _assert_one_path(active)
    assert [e["event_id"] for e in active["events"] if e["type"] == "assistant.final"][-1] == second[
        "event_id"
    ]
    starts = [e for e in _listing(live_system, key, sid, all=1)["events"] if e["type"] == "assistant.started"]
    replies = [e["event_id"] for e in starts if e["parent_id"] == asked["event_id"]]
    assert len(replies) == 2 and active["siblings"] == {asked["event_id"]: replies}
    kept = _listing(live_system, key, sid, branch=replies[0])
    assert [e["event_id"] for e in kept["events"]][-1] == first["event_id"], "the first reply is kept"


def test_concurrent_sends_on_two_branches_each_get_their_reply_and_idempotency_holds_per_branch(
    live_system: LiveSystem, tenant_key: Any, llm_stub: Any
) -> None:
    key, tag = tenant_key.key, uuid.uuid4().hex[:8]
    root = send(live_system, key, f"[[reply=base]] {tag} base")
    sid = root["session_id"]
    base = answered(live_system, key, sid, root["event_id"])

    accepted: dict[str, dict[str, Any]] = {}

    def branch(name: str) -> None:
        with live_system.client(key) as c:
            r = c.post(
                "/v1/session/message",
                json={
                    "message": f"[[delay=0.02]] {tag} {name}",
                    "session_id": sid,
                    "parent_event_id": base["event_id"],
                },
                headers={"Idempotency-Key": f"{tag}-{name}"},
            )
        assert r.status_code == 202, r.text
        accepted[name] = r.json()

    threads = [threading.Thread(target=branch, args=(n,)) for n in ("left", "right")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    finals = {n: answered(live_system, key, sid, a["event_id"]) for n, a in accepted.items()}
    for name, other in (("left", "right"), ("right", "left")):
        page = _listing(live_system, key, sid, branch=accepted[name]["event_id"])
        _assert_one_path(page)
        texts = _messages(page)
        assert texts[:2] == [f"{tag} base", "base"] and texts[2] == f"{tag} {name}"
        assert page["events"][-1]["event_id"] == finals[name]["event_id"]
        said = " ".join(str(m["content"]) for m in _prompt(llm_stub.url, f"{tag} {name}"))
        assert f"{tag} {other}" not in said

    # Idempotency per branch: the same key and body answer the same; another parent is a conflict.
    with live_system.client(key) as c:
        body = {
            "message": f"[[delay=0.02]] {tag} left",
            "session_id": sid,
            "parent_event_id": base["event_id"],
        }
        replay = c.post("/v1/session/message", json=body, headers={"Idempotency-Key": f"{tag}-left"})
        moved = c.post(
            "/v1/session/message",
            json={**body, "parent_event_id": root["event_id"]},
            headers={"Idempotency-Key": f"{tag}-left"},
        )
    assert replay.status_code == 202 and replay.json() == accepted["left"]
    assert moved.status_code == 409, moved.text


def test_a_worker_killed_mid_reply_on_a_branch_ends_that_reply_once_on_that_branch(
    live_system: LiveSystem, tenant_key: Any
) -> None:
    key, tag = tenant_key.key, uuid.uuid4().hex[:8]
    root, base, kept, kept_reply = base_and_kept(live_system, key, tag)
    sid = root["session_id"]

    edited = send(
        live_system,
        key,
        f"[[tokens=60]] [[delay=0.05]] {tag} edited",
        session_id=sid,
        parent_event_id=base["event_id"],
    )
    after = int(edited["stream"]["sse"].rsplit("=", 1)[1])
    read_stream(
        live_system,
        key,
        sid,
        after=after,
        until=lambda e: e["type"] == "assistant.delta" and e["data"]["index"] >= 2,
    )
    live_system.kill_workers()  # SIGKILL: main process and pool children
    live_system.ensure_worker()
    final = _turn_answered(live_system, key, sid, edited)
    assert final["data"]["message"] == "".join(f"t{i} " for i in range(60))

    events = _listing(live_system, key, sid, all=1)["events"]
    ends = [e for e in events if e["type"] in TERMINAL and e["data"].get("reply_to") == edited["event_id"]]
    assert [e["event_id"] for e in ends] == [final["event_id"]], "exactly one end, on the edited branch"
    active = _listing(live_system, key, sid)
    _assert_one_path(active)
    starts = [e["data"]["restart"] for e in active["events"] if e["type"] == "assistant.started"]
    assert starts[-2:] == [False, True] and active["events"][-1]["event_id"] == final["event_id"]
    assert active["siblings"][base["event_id"]] == [kept["event_id"], edited["event_id"]]
    old = _listing(live_system, key, sid, branch=kept["event_id"])
    assert old["events"][-1]["event_id"] == kept_reply["event_id"], "the other branch is untouched"
