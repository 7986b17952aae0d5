"""Delivering writes to a real HTTP memory service (the stub): outcomes, backoff, order, leases."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from memory.models import MemoryWal, MemoryWrite
from memory.port import MemoryUnavailable, Remember
from memory.services.delivery import claim_head, memory_deliver, memory_sweep
from somaagent.models import DeadLetter
from tests.live import free_port
from tests.memory.helpers import deliver_stream, enqueue, forget_session, make_tenant

pytestmark = pytest.mark.django_db


def test_delivered_writes_reach_the_service_and_the_wal(stub, remote_memory):
    tenant = make_tenant()
    first, second = enqueue(tenant, ["I live in Lisbon", "Noted, Lisbon."])
    result = deliver_stream(first, remote_memory)
    assert result.delivered == 2 and not result.errors
    stored = stub.stored(tenant=tenant)
    assert [s["key"] for s in stored] == [first.idempotency_key, second.idempotency_key]
    assert all(s["count"] == 1 for s in stored)
    assert stored[0]["namespace"] == "persona:default:owner:api"
    assert stored[0]["value"]["text"] == "I live in Lisbon" and stored[0]["value"]["role"] == "user"
    assert stored[0]["tags"] == ["conversation", "role:user"]
    for write in (first, second):
        write.refresh_from_db()
        assert write.state == "delivered" and write.delivered_at is not None and not write.lease_owner
    wal = list(MemoryWal.objects.filter(tenant=tenant).order_by("id"))
    assert [w.event_id for w in wal] == [first.event_id, second.event_id]
    assert [w.role for w in wal] == ["user", "assistant"]


@pytest.mark.parametrize("status", [503, 429])
def test_retry_after_reschedules_and_the_stream_waits(stub, remote_memory, status):
    stub.control({"remember": {"status": status, "retry_after": "30"}})
    tenant = make_tenant()
    head, behind = enqueue(tenant, ["one", "two"])
    before = timezone.now()
    result = deliver_stream(head, remote_memory)
    assert result.retrying == 1 and result.delivered == 0
    head.refresh_from_db()
    behind.refresh_from_db()
    assert head.state == "pending" and head.retry_count == 1 and str(status) in head.last_error
    assert head.next_attempt_at >= before + timedelta(seconds=29)
    assert not head.lease_owner and head.lease_until is None
    assert behind.retry_count == 0 and len(stub.requests("remember", tenant=tenant)) == 1
    # the head is not due, so nobody may take the stream, not even the write behind it
    assert claim_head(tenant_id=tenant.pk, session_id=head.session_id) is None
    assert head.pk not in {c.write_id for c in memory_sweep()}
    assert behind.pk not in {c.write_id for c in memory_sweep()}


@pytest.mark.parametrize(
    "fault",
    [{"status": 429}, {"status": 408}, {"status": 500}, {"status": 502}, {"drop": True}, {"delay": 3}],
    ids=["429", "408", "500", "502", "dropped-connection", "slower-than-timeout"],
)
def test_retryable_failures_keep_the_write(stub, remote_memory, fault):
    stub.control({"remember": fault})
    tenant = make_tenant()
    (write,) = enqueue(tenant, ["keep me"])
    result = deliver_stream(write, remote_memory)
    write.refresh_from_db()
    assert result.retrying == 1 and write.state == "pending" and write.retry_count == 1
    assert write.next_attempt_at > timezone.now()
    assert not DeadLetter.objects.filter(event__idempotency_key=write.idempotency_key).exists()


def test_unreachable_service_is_retryable(remote_memory):
    from memory.adapters.remote import RemoteMemory

    port = RemoteMemory(
        type(remote_memory.config)(
            **{**remote_memory.config.__dict__, "url": f"http://127.0.0.1:{free_port()}"}
        )
    )
    (write,) = enqueue(make_tenant(), ["nobody listens"])
    result = deliver_stream(write, port)
    write.refresh_from_db()
    assert result.retrying == 1 and "unreachable" in write.last_error


@pytest.mark.parametrize("status", [400, 404, 422])
def test_invalid_write_goes_to_dead_letters_and_the_stream_goes_on(stub, remote_memory, status):
    tenant = make_tenant()
    poison, fine = enqueue(tenant, ["this is POISON", "this is fine"])
    stub.control(
        {"remember": {"reject_substring": "POISON"}} if status == 400 else {"remember": {"status": status}}
    )
    result = deliver_stream(poison, remote_memory)
    poison.refresh_from_db()
    assert poison.state == "dead" and result.dead == 1
    letter = DeadLetter.objects.get(topic="memory.write", event__idempotency_key=poison.idempotency_key)
    assert letter.event["payload"]["value"]["text"] == "this is POISON"
    assert letter.event["reason"] == "rejected" and str(status) in letter.error
    assert letter.attempts == 1
    # the next write of the session is not held behind a dead one
    stub.reset()
    claim = claim_head(tenant_id=tenant.pk, session_id=fine.session_id)
    assert claim is not None and claim.write_id == fine.pk


def test_wrong_token_is_rejected(stub, remote_memory):
    from memory.adapters.remote import RemoteMemory

    port = RemoteMemory(type(remote_memory.config)(**{**remote_memory.config.__dict__, "token": "wrong"}))
    (write,) = enqueue(make_tenant(), ["secret"])
    deliver_stream(write, port)
    write.refresh_from_db()
    assert write.state == "dead" and "401" in write.last_error


def test_a_failure_after_the_retry_budget_is_dead(stub, remote_memory):
    stub.control({"remember": {"status": 503}})
    (write,) = enqueue(make_tenant(), ["too late"])
    MemoryWrite.objects.filter(pk=write.pk).update(retry_deadline=timezone.now() - timedelta(seconds=1))
    deliver_stream(write, remote_memory)
    write.refresh_from_db()
    assert write.state == "dead"
    letter = DeadLetter.objects.get(event__idempotency_key=write.idempotency_key)
    assert letter.event["reason"] == "retry budget spent"


def test_last_attempt_happens_at_the_deadline_not_after(stub, remote_memory):
    stub.control({"remember": {"status": 503, "retry_after": "3600"}})
    (write,) = enqueue(make_tenant(), ["soon dead"])
    deadline = timezone.now() + timedelta(seconds=20)
    MemoryWrite.objects.filter(pk=write.pk).update(retry_deadline=deadline)
    deliver_stream(write, remote_memory)
    write.refresh_from_db()
    assert write.state == "pending" and write.next_attempt_at == deadline


def test_an_hour_of_outage_stays_within_the_default_budget(stub, remote_memory):
    """Minutes or hours of 503s never reach the dead letters (budget: 24 h by default)."""
    stub.control({"remember": {"status": 503}})
    (write,) = enqueue(make_tenant(), ["patience"])
    for _ in range(12):
        MemoryWrite.objects.filter(pk=write.pk).update(
            next_attempt_at=timezone.now(), created_at=timezone.now() - timedelta(hours=1)
        )
        deliver_stream(write, remote_memory)
    write.refresh_from_db()
    assert write.state == "pending" and write.retry_count == 12
    assert not DeadLetter.objects.filter(event__idempotency_key=write.idempotency_key).exists()


def test_the_same_task_twice_delivers_once(stub, remote_memory):
    tenant = make_tenant()
    (write,) = enqueue(tenant, ["just once"])
    claim = claim_head(tenant_id=tenant.pk, session_id=write.session_id)
    assert claim is not None
    first = memory_deliver(write_id=claim.write_id, token=claim.token, port=remote_memory)
    second = memory_deliver(write_id=claim.write_id, token=claim.token, port=remote_memory)
    assert first.delivered == 1 and second.stale and second.delivered == 0
    assert [s["count"] for s in stub.stored(tenant=tenant)] == [1]
    assert MemoryWal.objects.filter(event_id=write.event_id).count() == 1


def test_a_lease_lost_mid_delivery_leaves_one_stored_write_and_one_wal_record(stub, remote_memory):
    """Worker A stalls past its lease; B takes the write and delivers it; then A's call lands too."""
    tenant = make_tenant()
    (write,) = enqueue(tenant, ["raced"])
    claim_a = claim_head(tenant_id=tenant.pk, session_id=write.session_id)
    assert claim_a is not None

    class StallingPort:
        name = "stalling"

        def __init__(self) -> None:
            self.calls = 0

        def remember(self, item):
            self.calls += 1
            if self.calls == 1:  # A is "stalled": its lease runs out and B delivers meanwhile
                MemoryWrite.objects.filter(pk=write.pk).update(
                    lease_until=timezone.now() - timedelta(seconds=1)
                )
                claim_b = claim_head(tenant_id=tenant.pk, session_id=write.session_id)
                assert claim_b is not None
                assert (
                    memory_deliver(write_id=claim_b.write_id, token=claim_b.token, port=self).delivered == 1
                )
            remote_memory.remember(item)

    result_a = memory_deliver(write_id=claim_a.write_id, token=claim_a.token, port=StallingPort())
    assert result_a.delivered == 0
    stored = stub.stored(tenant=tenant)
    assert len(stored) == 1 and stored[0]["count"] == 2  # the service saw both and kept one
    assert MemoryWal.objects.filter(tenant=tenant).count() == 1
    write.refresh_from_db()
    assert write.state == "delivered"


def test_sweep_takes_each_due_head_once_and_again_after_its_lease_expires(remote_memory):
    tenant = make_tenant()
    a1, _a2 = enqueue(tenant, ["a1", "a2"])
    (b1,) = enqueue(tenant, ["b1"])
    claims = memory_sweep()
    mine = {c.write_id for c in claims} & {a1.pk, _a2.pk, b1.pk}
    assert mine == {a1.pk, b1.pk}
    assert not {c.write_id for c in memory_sweep()} & mine
    MemoryWrite.objects.filter(pk=a1.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert {c.write_id for c in memory_sweep()} & mine == {a1.pk}


def test_forget_reaches_the_service(stub, remote_memory):
    tenant = make_tenant()
    session_id = uuid.uuid4()
    remembered, _ = enqueue(tenant, ["forget me", "ok"], session_id=session_id)
    deliver_stream(remembered, remote_memory)
    assert len(stub.stored(tenant=tenant)) == 2

    forget = forget_session(tenant, session_id)
    deliver_stream(forget, remote_memory)
    forget.refresh_from_db()
    assert forget.state == "delivered"
    assert stub.stored(tenant=tenant) == []
    (call,) = stub.forgotten(tenant=tenant)
    assert call["session_id"] == str(session_id) and call["forgotten"] == 2
    assert MemoryWal.objects.get(event_id=forget.event_id).op == "forget"


def test_recall_failures_are_reported_as_unavailable(stub, remote_memory):
    from memory.port import RecallQuery

    stub.control({"recall": {"delay": 3}})
    with pytest.raises(MemoryUnavailable):
        remote_memory.recall(
            RecallQuery(
                tenant=str(uuid.uuid4()), namespace="persona:default", query="x", top_k=3, timeout=0.5
            )
        )


@pytest.mark.django_db(transaction=True)
def test_the_remote_service_is_called_without_holding_a_database_connection(stub, remote_memory):
    """Many deliveries (and recalls) waiting on a slow memory service must not take the
    worker's connection pool from the turns."""
    from django.db import connection

    (write,) = enqueue(make_tenant(), ["remember me"])
    write.refresh_from_db()
    assert connection.connection is not None  # the thread holds one before the call
    remote_memory.remember(
        Remember(tenant=str(write.tenant_id), namespace="default", key="k1", value={"text": "remember me"})
    )
    assert connection.connection is None
