"""Housekeeping: pruning by retention, orphaned stream buffers, and the task on a real worker."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from celeryconfig import beat_schedule
from conversations.models import IdempotencyRecord, Session
from conversations.ops import idempotency_prune, stream_buffers_sweep
from conversations.stream_buffer import stream_key
from somaagent.celery import app
from somaagent.housekeeping import delete_in_batches, housekeeping_run, outbox_prune
from somaagent.models import OutboxMessage
from somaagent.redis_client import sync_redis
from tests.conftest import make_tenant_key
from tests.live import wait_until


def _outbox(key: str, *, published_ago: float | None) -> OutboxMessage:
    now = timezone.now()
    return OutboxMessage.objects.create(
        topic="conversation.turn",
        payload={},
        dedupe_key=key,
        published_at=None if published_ago is None else now - timedelta(seconds=published_ago),
    )


@pytest.mark.django_db
def test_only_published_outbox_rows_past_retention_go(settings) -> None:
    settings.SOMA_OPS = dataclasses.replace(settings.SOMA_OPS, outbox_retention_seconds=3600)
    tag = uuid.uuid4().hex[:8]
    old = _outbox(f"{tag}-old", published_ago=7200)
    recent = _outbox(f"{tag}-recent", published_ago=60)
    pending = _outbox(f"{tag}-pending", published_ago=None)
    pending.created_at = timezone.now() - timedelta(days=30)
    pending.save()
    assert outbox_prune() >= 1
    left = set(OutboxMessage.objects.filter(dedupe_key__startswith=tag).values_list("pk", flat=True))
    assert left == {recent.pk, pending.pk}
    assert old.pk not in left


@pytest.mark.django_db
def test_idempotency_records_past_retention_go(settings) -> None:
    settings.SOMA_OPS = dataclasses.replace(settings.SOMA_OPS, idempotency_retention_seconds=86400)
    tenant: Any = make_tenant_key().tenant
    old = IdempotencyRecord.objects.create(
        tenant=tenant, key="old", request_hash="h", response={}, created_at=timezone.now() - timedelta(days=2)
    )
    fresh = IdempotencyRecord.objects.create(tenant=tenant, key="fresh", request_hash="h", response={})
    assert idempotency_prune() >= 1
    assert set(IdempotencyRecord.objects.filter(tenant=tenant).values_list("pk", flat=True)) == {fresh.pk}
    assert not IdempotencyRecord.objects.filter(pk=old.pk).exists()


@pytest.mark.django_db
def test_delete_in_batches_deletes_everything_in_small_steps() -> None:
    tag = uuid.uuid4().hex[:8]
    for i in range(7):
        _outbox(f"{tag}-{i}", published_ago=10)
    qs = OutboxMessage.objects.filter(dedupe_key__startswith=tag).order_by("id")
    assert delete_in_batches(qs, batch=3) == 7
    assert not qs.exists()


def _buffer(session_id: str, *, ttl: int | None = 600) -> str:
    key = stream_key(session_id)
    client = sync_redis()
    client.xadd(key, {"seq": "1", "e": json.dumps({"id": "1"})})
    if ttl:
        client.expire(key, ttl)
    return key


@pytest.mark.django_db
def test_buffers_of_deleted_sessions_go_and_live_ones_keep_a_ttl(settings) -> None:
    tenant: Any = make_tenant_key().tenant
    live = Session.objects.create(tenant=tenant)
    kept = _buffer(str(live.pk))
    no_ttl = Session.objects.create(tenant=tenant)
    lost_ttl = _buffer(str(no_ttl.pk), ttl=None)
    orphan = _buffer(str(uuid.uuid4()))
    garbage = _buffer("not-a-uuid")
    client = sync_redis()
    try:
        assert stream_buffers_sweep(scan_count=2) >= 2
        assert client.exists(kept) and client.exists(lost_ttl)
        assert not client.exists(orphan) and not client.exists(garbage)
        assert 0 < client.ttl(lost_ttl) <= settings.SOMA.stream_buffer_ttl_seconds
    finally:
        client.delete(kept, lost_ttl, orphan, garbage)


@pytest.mark.django_db
def test_one_failing_step_does_not_stop_the_others(monkeypatch) -> None:
    from somaagent import housekeeping

    def broken() -> int:
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(housekeeping.PRUNERS, "broken", broken)
    tag = uuid.uuid4().hex[:8]
    _outbox(f"{tag}-old", published_ago=30 * 86400)
    counts = housekeeping_run()
    assert counts["broken"] == -1
    assert counts["outbox"] >= 1
    assert not OutboxMessage.objects.filter(dedupe_key__startswith=tag).exists()


@pytest.mark.django_db
def test_memory_replicas_past_retention_go(settings) -> None:
    from memory.models import MemoryReplica

    settings.SOMA_OPS = dataclasses.replace(settings.SOMA_OPS, replica_retention_seconds=86400)
    tenant: Any = make_tenant_key().tenant

    def replica(age: timedelta) -> MemoryReplica:
        return MemoryReplica.objects.create(
            event_id=uuid.uuid4(),
            session_id=uuid.uuid4(),
            tenant=tenant,
            role="user",
            payload={},
            wal_timestamp=timezone.now() - age,
            created_at=timezone.now() - age,
        )

    old, fresh = replica(timedelta(days=3)), replica(timedelta(hours=1))
    counts = housekeeping_run()
    assert counts["memory_replica"] >= 1
    assert set(MemoryReplica.objects.filter(tenant=tenant).values_list("pk", flat=True)) == {fresh.pk}
    assert not MemoryReplica.objects.filter(pk=old.pk).exists()


def test_beat_runs_housekeeping() -> None:
    entry: Any = beat_schedule["housekeeping"]
    assert entry["task"] == "soma.housekeeping" and entry["schedule"] > 0


@pytest.mark.integration
def test_a_real_worker_runs_housekeeping(live_system, tenant_key):
    orphan = _buffer(str(uuid.uuid4()))
    app.send_task("soma.housekeeping")
    wait_until(lambda: not sync_redis().exists(orphan), timeout=30, what="the orphan buffer to go")


@pytest.mark.django_db
def test_done_memory_writes_and_wal_past_retention_go(settings) -> None:
    from memory.models import MemoryWal, MemoryWrite

    settings.SOMA_OPS = dataclasses.replace(
        settings.SOMA_OPS, outbox_retention_seconds=86400, replica_retention_seconds=86400
    )
    tenant: Any = make_tenant_key().tenant
    now = timezone.now()

    def write(state: str, delivered_ago: timedelta | None) -> MemoryWrite:
        return MemoryWrite.objects.create(
            tenant=tenant,
            session_id=uuid.uuid4(),
            event_id=uuid.uuid4(),
            payload={},
            idempotency_key=uuid.uuid4().hex,
            state=state,
            retry_deadline=now,
            created_at=now - timedelta(days=5),
            delivered_at=None if delivered_ago is None else now - delivered_ago,
        )

    def wal(state: str, replicated_ago: timedelta | None) -> MemoryWal:
        return MemoryWal.objects.create(
            event_id=uuid.uuid4(),
            tenant=tenant,
            session_id=uuid.uuid4(),
            state=state,
            wal_timestamp=now - timedelta(days=5),
            replicated_at=None if replicated_ago is None else now - replicated_ago,
        )

    old_delivered = write("delivered", timedelta(days=3))
    kept_writes = {
        write("delivered", timedelta(hours=1)).pk,
        write("pending", None).pk,
        write("dead", None).pk,  # a dead letter waits for staff, however old
    }
    old_replicated = wal("replicated", timedelta(days=3))
    kept_wal = {wal("replicated", timedelta(hours=1)).pk, wal("pending", None).pk, wal("failed", None).pk}

    counts = housekeeping_run()
    assert counts["memory_writes"] >= 1 and counts["memory_wal"] >= 1
    assert set(MemoryWrite.objects.filter(tenant=tenant).values_list("pk", flat=True)) == kept_writes
    assert set(MemoryWal.objects.filter(tenant=tenant).values_list("pk", flat=True)) == kept_wal
    assert not MemoryWrite.objects.filter(pk=old_delivered.pk).exists()
    assert not MemoryWal.objects.filter(pk=old_replicated.pk).exists()
