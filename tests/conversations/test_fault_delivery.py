"""Things arriving twice: the same Idempotency-Key, the same turn task delivered again."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import httpx
import pytest

from conversations.models import IdempotencyRecord, Session, SessionEvent, Turn
from somaagent.models import OutboxMessage
from tests.conversations.support import persisted_types, send
from tests.live import LiveSystem, read_stream, wait_until

pytestmark = pytest.mark.integration


def _counts(tenant: Any) -> dict[str, int]:
    return {
        "sessions": Session.objects.filter(tenant=tenant).count(),
        "events": SessionEvent.objects.filter(session__tenant=tenant).count(),
        "turns": Turn.objects.filter(tenant=tenant).count(),
        "outbox": OutboxMessage.objects.count(),
        "keys": IdempotencyRecord.objects.filter(tenant=tenant).count(),
    }


def _post(system: LiveSystem, key: str, body: dict[str, Any], idem: str) -> httpx.Response:
    with system.client(key) as c:
        return c.post("/v1/session/message", json=body, headers={"Idempotency-Key": idem})


def _post_concurrently(system: LiveSystem, key: str, body: dict[str, Any], idem: str, n: int) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def one(i: int) -> None:
        barrier.wait(timeout=30)
        results[i] = _post(system, key, body, idem)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.mark.parametrize("existing_session", [False, True])
def test_same_key_sent_concurrently_starts_one_turn(live_system, tenant_key, existing_session):
    body: dict[str, Any] = {"message": "only once please [[tokens=3]]"}
    if existing_session:
        first = send(live_system, tenant_key.key, "hello [[tokens=1]]")
        read_stream(live_system, tenant_key.key, first["session_id"])
        body["session_id"] = first["session_id"]
    before = _counts(tenant_key.tenant)

    responses = _post_concurrently(live_system, tenant_key.key, body, f"idem-{uuid.uuid4()}", n=6)

    assert [r.status_code for r in responses] == [202] * 6, [r.text for r in responses]
    bodies = [r.json() for r in responses]
    assert all(b == bodies[0] for b in bodies)
    after = _counts(tenant_key.tenant)
    assert after["sessions"] - before["sessions"] == (0 if existing_session else 1)
    assert after["turns"] - before["turns"] == 1
    assert after["keys"] - before["keys"] == 1
    assert after["outbox"] - before["outbox"] == 1
    events = read_stream(
        live_system,
        tenant_key.key,
        bodies[0]["session_id"],
        until=lambda e: e["type"] == "assistant.final" and e["data"]["message"] == "t0 t1 t2 ",
    )
    assert [e["type"] for e in events].count("user.message") == (2 if existing_session else 1)


def test_same_key_sent_again_returns_the_same_answer_and_starts_nothing(live_system, tenant_key):
    idem = f"idem-{uuid.uuid4()}"
    body = {"message": "sequential [[tokens=2]]", "metadata": {"a": 1}}
    first = _post(live_system, tenant_key.key, body, idem)
    assert first.status_code == 202
    read_stream(live_system, tenant_key.key, first.json()["session_id"])
    before = _counts(tenant_key.tenant)

    again = _post(live_system, tenant_key.key, body, idem)
    assert again.status_code == 202 and again.json() == first.json()
    assert _counts(tenant_key.tenant) == before

    other = _post(live_system, tenant_key.key, {**body, "message": "something else"}, idem)
    assert other.status_code == 409, other.text
    assert other.json()["error"]["code"] == "idempotency_conflict"
    assert _counts(tenant_key.tenant) == before
    assert persisted_types(first.json()["session_id"]) == [
        "user.message",
        "assistant.started",
        "assistant.final",
    ]


def test_a_key_is_per_tenant(live_system, tenant_key, other_tenant_key):
    idem = f"idem-{uuid.uuid4()}"
    mine = _post(live_system, tenant_key.key, {"message": "[[tokens=1]]"}, idem)
    theirs = _post(live_system, other_tenant_key.key, {"message": "[[tokens=1]]"}, idem)
    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["session_id"] != theirs.json()["session_id"]


def _send_duplicate(turn_id: str) -> str:
    from somaagent.celery import app

    result = app.send_task(
        "conversation.run_turn", kwargs={"turn_id": turn_id}, queue="conversation", routing_key="conversation"
    )
    return str(result.id)


def _processed(system: LiveSystem, task_id: str) -> bool:
    return any(f"{task_id}] succeeded" in w.log_tail(2_000_000) for w in system.workers)


def test_duplicate_task_for_a_running_and_a_finished_turn(live_system, tenant_key):
    accepted = send(live_system, tenant_key.key, "[[tokens=40]] [[delay=0.05]]")
    turn_id = accepted["turn_id"]
    wait_until(
        lambda: Turn.objects.get(pk=turn_id).status == Turn.Status.RUNNING, timeout=30, what="turn to run"
    )
    while_running = _send_duplicate(turn_id)
    wait_until(lambda: _processed(live_system, while_running), timeout=30, what="duplicate task to run")
    events = read_stream(live_system, tenant_key.key, accepted["session_id"])
    assert events[-1]["type"] == "assistant.final"

    after_finish = _send_duplicate(turn_id)
    wait_until(lambda: _processed(live_system, after_finish), timeout=30, what="second duplicate to run")
    assert persisted_types(accepted["session_id"]) == ["user.message", "assistant.started", "assistant.final"]
    turn = Turn.objects.get(pk=turn_id)
    assert turn.status == Turn.Status.COMPLETED and turn.attempts == 1
