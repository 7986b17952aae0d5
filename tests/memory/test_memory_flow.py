"""End to end with a real worker and beat against the stub SomaBrain service over HTTP.

The live system is restarted with ``SOMA_MEMORY_URL`` pointing at the stub for
this module (fixture ``remote_live``), so every memory call crosses real HTTP.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from conversations.models import EventType, SessionEvent
from memory.models import MemoryReplica, MemoryWrite
from somaagent.models import DeadLetter, Persona
from tests.live import wait_until
from tests.memory.flow import chat, llm_request_ending_with, wait_delivered, writes_of

pytestmark = pytest.mark.integration


def remembered_events(session_ids: list[str]) -> list[SessionEvent]:
    return list(
        SessionEvent.objects.filter(
            session_id__in=session_ids, type__in=[EventType.USER_MESSAGE, EventType.ASSISTANT_FINAL]
        ).order_by("session_id", "seq")
    )


def worker_log_has(system, *needles: str) -> bool:
    for worker in system.workers:
        for line in worker.log_path.read_text(errors="replace").splitlines():
            if all(n in line for n in needles):
                return True
    return False


def replica_event_ids(tenant) -> set[uuid.UUID]:
    return set(MemoryReplica.objects.filter(tenant=tenant).values_list("event_id", flat=True))


def test_outage_then_recovery_delivers_every_write_in_order_exactly_once(memory_system, tenant_key, stub):
    system, key, tenant = memory_system, tenant_key.key, tenant_key.tenant
    stub.control({"*": {"status": 503, "retry_after": "1"}})

    # chats go on while the memory service answers 503
    a, final = chat(system, key, "alpha one [[tokens=3]]")
    assert final["data"]["memory"] == []
    b, _ = chat(system, key, "bravo one [[tokens=3]]")
    chat(system, key, "alpha two [[tokens=3]]", session_id=a["session_id"])
    chat(system, key, "bravo two [[tokens=3]]", session_id=b["session_id"])
    chat(system, key, "alpha three [[tokens=3]]", session_id=a["session_id"])

    # the writes wait: ten of them, each session's head retried, nothing stored
    def heads_retried() -> bool:
        writes = writes_of(tenant)
        heads = {w.session_id: w for w in reversed(writes)}
        return len(writes) == 10 and all(h.retry_count >= 2 for h in heads.values())

    wait_until(heads_retried, timeout=60, interval=0.2, what="both heads retried")
    assert all(w.state == "pending" for w in writes_of(tenant))
    assert stub.stored(tenant=tenant) == []

    heads = set({w.session_id: w.pk for w in reversed(writes_of(tenant))}.values())

    # then it is down altogether (connection refused) ...
    stub.stop()
    wait_until(
        lambda: any("unreachable" in w.last_error for w in writes_of(tenant)),
        timeout=60,
        interval=0.2,
        what="a delivery attempt against the stopped service",
    )
    assert not DeadLetter.objects.filter(topic="memory.write", event__tenant=str(tenant.pk)).exists()

    # ... and comes back: everything is delivered, in order, once
    stub.start()
    writes = wait_delivered(tenant, count=10, timeout=120)
    stored = stub.stored(tenant=tenant)
    assert len(stored) == 10 and all(s["count"] == 1 for s in stored), stored
    events = remembered_events([a["session_id"], b["session_id"]])
    assert {s["key"] for s in stored} == {f"mem:{e.event_id}" for e in events}
    for session_id in (a["session_id"], b["session_id"]):
        expected = [f"mem:{e.event_id}" for e in events if str(e.session_id) == session_id]
        arrived = [s["key"] for s in stored if s["value"]["session_id"] == session_id]
        assert arrived == expected
    assert all(w.retry_count == 0 for w in writes if w.pk not in heads)  # they waited behind the heads

    # and the replica holds every delivered write once
    wait_until(
        lambda: replica_event_ids(tenant) == {e.event_id for e in events},
        timeout=60,
        interval=0.2,
        what="replica rows",
    )
    assert MemoryReplica.objects.filter(tenant=tenant).count() == 10
    assert not DeadLetter.objects.filter(topic__startswith="memory.", event__tenant=str(tenant.pk)).exists()


def test_the_same_delivery_task_twice_leaves_one_remote_write_and_one_replica_row(
    memory_system, tenant_key, stub
):
    from somaagent.celery import app

    tenant = tenant_key.tenant
    stub.control({"remember": {"status": 503, "retry_after": "3600"}})
    chat(memory_system, tenant_key.key, "deliver me once [[tokens=2]]")
    head = wait_until(
        lambda: next((w for w in writes_of(tenant) if w.retry_count >= 1 and not w.lease_owner), None),
        timeout=30,
        interval=0.2,
        what="the head write to fail once",
    )
    stub.reset()
    stub.control({"remember": {"delay": 1.5}})  # slow, so the two tasks overlap
    token = f"dup-{uuid.uuid4().hex}"
    MemoryWrite.objects.filter(pk=head.pk).update(
        lease_owner=token, lease_until=timezone.now() + timedelta(seconds=60), next_attempt_at=timezone.now()
    )
    for _ in range(2):
        app.send_task(
            "memory.deliver",
            kwargs={"write_id": head.pk, "token": token},
            queue="memory",
            routing_key="memory",
        )
    writes = wait_delivered(tenant, count=2)
    stored = stub.stored(tenant=tenant)
    assert sorted(s["key"] for s in stored) == sorted(w.idempotency_key for w in writes)
    assert [s["count"] for s in stored] == [1, 1]
    wait_until(lambda: len(replica_event_ids(tenant)) == 2, timeout=30, what="two replica rows")
    assert MemoryReplica.objects.filter(tenant=tenant).count() == 2
    # both tasks really ran: one delivered, the other found its lease taken
    wait_until(
        lambda: (
            any(token in line and "'stale': True" in line for line in memory_system.logs().splitlines())
            or any(
                token in line and "'stale': True" in line
                for w in memory_system.workers
                for line in w.log_path.read_text(errors="replace").splitlines()
            )
        ),
        timeout=30,
        what="the duplicate task to report a stale lease",
    )


def test_a_poison_write_ends_in_dead_letters_and_replays_from_admin_once_fixed(
    memory_system, tenant_key, stub
):
    tenant = tenant_key.tenant
    stub.control({"remember": {"reject_substring": "POISON"}})
    accepted, _ = chat(memory_system, tenant_key.key, "this message is POISON [[reply=understood]]")
    user_key = f"mem:{accepted['event_id']}"

    def settled() -> bool:
        states = {w.idempotency_key: w.state for w in writes_of(tenant)}
        return len(states) == 2 and states[user_key] == "dead" and "delivered" in states.values()

    wait_until(settled, timeout=30, interval=0.2, what="poison dead, reply delivered")
    letter = DeadLetter.objects.get(topic="memory.write", event__idempotency_key=user_key)
    assert "400" in letter.error
    assert [s["value"]["text"] for s in stub.stored(tenant=tenant)] == ["understood"]

    stub.reset()  # the service is fixed
    staff = get_user_model().objects.create_superuser(f"staff-{uuid.uuid4().hex[:8]}", "s@example.com", "pw")
    client = Client()
    client.force_login(staff)
    response = client.post(
        "/admin/somaagent/deadletter/",
        {"action": "replay", "_selected_action": [str(letter.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    assert [str(m) for m in response.context["messages"]] == ["Replayed 1 of 1 dead letter(s)."]

    wait_delivered(tenant, count=2)
    stored = {s["key"]: s for s in stub.stored(tenant=tenant)}
    assert stored[user_key]["count"] == 1 and stored[user_key]["value"]["text"].endswith(
        "POISON [[reply=understood]]"
    )
    wait_until(
        lambda: MemoryReplica.objects.filter(event_id=accepted["event_id"]).exists(),
        timeout=30,
        what="the replayed write in the replica",
    )


def test_a_new_session_recalls_what_was_said_in_an_earlier_one(
    memory_system, tenant_key, other_tenant_key, stub, llm_stub
):
    system, key, tenant = memory_system, tenant_key.key, tenant_key.tenant
    first, _ = chat(system, key, "My cat is called Zorblax and she adores tuna [[reply=Lovely name.]]")
    wait_delivered(tenant, count=2)

    question = f"What is the name of my cat? ({uuid.uuid4().hex[:8]})"
    second, final = chat(system, key, question)
    assert second["session_id"] != first["session_id"]
    refs = final["data"]["memory"]
    assert refs and refs[0]["id"] == first["event_id"] and "Zorblax" in refs[0]["snippet"]
    assert refs[0]["session_id"] == first["session_id"] and refs[0]["score"] > 0
    prompt = llm_request_ending_with(llm_stub.url, question)["messages"]
    assert prompt[0]["role"] == "system" and prompt[1]["role"] == "system"
    assert "Zorblax" in prompt[1]["content"]
    (recall,) = [r for r in stub.requests("recall", tenant=tenant) if r["body"]["query"] == question]
    assert recall["body"]["namespace"] == "persona:default:owner:api"  # API-key sessions share one

    # another tenant asking the same thing gets nothing of it
    _, other_final = chat(system, other_tenant_key.key, question)
    assert other_final["data"]["memory"] == []
    assert "Zorblax" not in str(llm_request_ending_with(llm_stub.url, question)["messages"])

    # nor does another persona of the same tenant
    persona = Persona.objects.create(tenant=tenant, name=f"p-{uuid.uuid4().hex[:6]}")
    persona_question = f"What is the name of my cat? ({uuid.uuid4().hex[:8]})"
    _, persona_final = chat(system, key, persona_question, persona_id=str(persona.pk))
    assert persona_final["data"]["memory"] == []
    assert "Zorblax" not in str(llm_request_ending_with(llm_stub.url, persona_question)["messages"])


def test_a_slow_memory_service_does_not_hold_up_the_reply(memory_system, tenant_key, stub):
    stub.control({"recall": {"delay": 5}})
    accepted, final = chat(memory_system, tenant_key.key, "is anybody there? [[tokens=2]]")
    assert final["data"]["memory"] == [] and final["data"]["message"] == "t0 t1 "
    wait_until(
        lambda: worker_log_has(memory_system, "memory recall failed", accepted["turn_id"]),
        timeout=10,
        what="the recall failure in the worker log",
    )


def test_deleting_a_session_forgets_it_through_the_same_path(memory_system, tenant_key, stub):
    system, key, tenant = memory_system, tenant_key.key, tenant_key.tenant
    accepted, _ = chat(system, key, "forget this conversation please [[tokens=2]]")
    wait_delivered(tenant, count=2)
    wait_until(lambda: len(replica_event_ids(tenant)) == 2, timeout=30, what="replica rows")
    with system.client(key) as c:
        assert c.delete(f"/v1/sessions/{accepted['session_id']}").status_code == 204
    writes = wait_delivered(tenant, count=3)
    assert writes[-1].op == "forget"
    (call,) = stub.forgotten(tenant=tenant)
    assert call["session_id"] == accepted["session_id"] and call["forgotten"] == 2
    assert stub.stored(tenant=tenant) == []
    wait_until(lambda: not replica_event_ids(tenant), timeout=30, what="the replica to forget the session")
