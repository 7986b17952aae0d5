"""Staff replay memory dead letters from admin (one or many) and browse the memory tables."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model

from memory.models import MemoryReplica, MemoryWrite
from memory.services.replication import memory_replicate
from somaagent.models import DeadLetter
from tests.memory.helpers import deliver_stream, enqueue, forget_session, make_tenant

pytestmark = pytest.mark.django_db

DLQ_URL = "/admin/somaagent/deadletter/"


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_superuser(f"staff-{uuid.uuid4().hex[:6]}", "s@example.com", "pw")
    client.force_login(user)
    return client


def dead_write(stub, port, tenant, text="POISON pill"):
    stub.control({"remember": {"reject_substring": "POISON"}})
    (write,) = enqueue(tenant, [text])
    deliver_stream(write, port)
    write.refresh_from_db()
    assert write.state == "dead"
    return write, DeadLetter.objects.get(topic="memory.write", event__idempotency_key=write.idempotency_key)


def replay(staff, *letters):
    response = staff.post(
        DLQ_URL, {"action": "replay", "_selected_action": [str(letter.pk) for letter in letters]}, follow=True
    )
    assert response.status_code == 200
    return [str(m) for m in response.context["messages"]]


def test_replaying_one_dead_write_delivers_it_once_the_service_accepts_it(staff, stub, remote_memory):
    tenant = make_tenant()
    write, letter = dead_write(stub, remote_memory, tenant)
    stub.reset()  # the fix on the service side
    assert replay(staff, letter) == ["Replayed 1 of 1 dead letter(s)."]
    write.refresh_from_db()
    letter.refresh_from_db()
    assert write.state == "pending" and write.retry_count == 0 and letter.replayed_at is not None
    assert deliver_stream(write, remote_memory).delivered == 1
    (stored,) = stub.stored(tenant=tenant)
    assert stored["key"] == write.idempotency_key and stored["count"] == 1
    memory_replicate()
    assert MemoryReplica.objects.filter(event_id=write.event_id).count() == 1
    # replaying the same letter again does nothing: the write is delivered
    assert replay(staff, letter) == ["Replayed 0 of 1 dead letter(s)."]


def test_bulk_replay(staff, stub, remote_memory):
    tenant = make_tenant()
    (w1, l1), (w2, l2) = dead_write(stub, remote_memory, tenant), dead_write(stub, remote_memory, tenant)
    assert replay(staff, l1, l2) == ["Replayed 2 of 2 dead letter(s)."]
    assert set(MemoryWrite.objects.filter(pk__in=[w1.pk, w2.pk]).values_list("state", flat=True)) == {
        "pending"
    }


def test_a_missing_write_is_recreated_from_its_dead_letter(staff, stub, remote_memory):
    tenant = make_tenant()
    write, letter = dead_write(stub, remote_memory, tenant)
    MemoryWrite.objects.filter(pk=write.pk).delete()
    assert replay(staff, letter) == ["Replayed 1 of 1 dead letter(s)."]
    again = MemoryWrite.objects.get(idempotency_key=write.idempotency_key)
    assert again.state == "pending" and again.payload == write.payload and again.event_id == write.event_id


def test_writes_of_a_forgotten_session_are_not_replayed(staff, stub, remote_memory):
    tenant = make_tenant()
    write, letter = dead_write(stub, remote_memory, tenant)
    forget_session(tenant, write.session_id)
    assert replay(staff, letter) == ["Replayed 0 of 1 dead letter(s)."]
    write.refresh_from_db()
    assert write.state == "dead"


def test_staff_browse_writes_and_replica_by_tenant_session_and_state(staff, stub, remote_memory):
    tenant, other = make_tenant(), make_tenant()
    mine = enqueue(tenant, ["browse me"])[0]
    theirs = enqueue(other, ["not me"])[0]
    url = "/admin/memory/memorywrite/"
    page = staff.get(url, {"session_id": str(mine.session_id)})
    assert page.status_code == 200
    assert list(page.context["cl"].queryset) == [mine]
    page = staff.get(url, {"tenant__id__exact": str(other.pk), "state__exact": "pending"})
    assert list(page.context["cl"].queryset) == [theirs]
    page = staff.get(url, {"q": str(theirs.session_id)})
    assert list(page.context["cl"].queryset) == [theirs]
    for path in ("memoryreplica", "memorywal", "memoryitem"):
        assert staff.get(f"/admin/memory/{path}/", {"session_id": str(mine.session_id)}).status_code == 200


def test_deleting_a_session_in_admin_queues_a_forget(staff):
    from conversations.services.accept import MessageInput, message_accept

    tenant = make_tenant()
    accepted = message_accept(tenant=tenant, data=MessageInput(message="delete me from admin"))
    response = staff.post(
        f"/admin/conversations/session/{accepted['session_id']}/delete/", {"post": "yes"}, follow=True
    )
    assert response.status_code == 200
    forget = MemoryWrite.objects.get(idempotency_key=f"forget:{accepted['session_id']}")
    assert forget.op == "forget" and forget.state == "pending" and forget.tenant_id == tenant.pk
    assert forget.payload == {
        "namespace": "persona:default:owner:api",  # no persona, started with an API key
        "session_id": accepted["session_id"],
        "key": forget.idempotency_key,
    }


@pytest.mark.django_db(transaction=True)
def test_readyz_shows_memory_backlog_without_requiring_it(client, settings):
    # /readyz runs its checks on their own threads (bounded by a timeout) and
    # caches the answer: they see committed rows only, and this test wants a
    # fresh answer.
    import dataclasses

    settings.SOMA_OPS = dataclasses.replace(settings.SOMA_OPS, readyz_cache_seconds=0)
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from memory.models import MemoryWrite

    tenant = make_tenant()
    # Leased before it commits: the test run's live worker (started by another test) would
    # otherwise deliver it at once, and the backlog this test reads would be empty.
    with transaction.atomic():
        (write,) = enqueue(tenant, ["waiting"])
        MemoryWrite.objects.filter(pk=write.pk).update(
            lease_owner="held-by-this-test", lease_until=timezone.now() + timedelta(hours=1)
        )
    body = client.get("/readyz").json()
    memory = body["checks"]["memory"]
    assert memory["required"] is False and memory["ok"] is True
    assert memory["outbox_depth"] >= 1 and memory["adapter"] == "embedded"
    assert "replication_lag_seconds" in memory and "dead_letters" in memory
