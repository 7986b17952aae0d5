"""WAL → replica: batches, idempotence, forget, failures to dead letters and their replay, lag and depth."""

from __future__ import annotations

import io
import json
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from memory.adapters.embedded import EmbeddedMemory
from memory.models import MemoryReplica, MemoryWal, MemoryWrite
from memory.selectors import memory_outbox_depth, memory_replication_lag_seconds
from memory.services.replication import memory_replicate
from somaagent.models import DeadLetter
from somaagent.outbox import dead_letter_replay
from tests.memory.helpers import deliver_stream, enqueue, forget_session, make_tenant

pytestmark = pytest.mark.django_db


def delivered(tenant, texts, **kwargs):
    writes = enqueue(tenant, texts, **kwargs)
    assert deliver_stream(writes[0], EmbeddedMemory()).delivered == len(writes)
    return writes


def test_replicates_every_wal_record_once(settings):
    tenant = make_tenant()
    writes = delivered(tenant, ["alpha", "beta", "gamma", "delta", "epsilon"])
    counts = memory_replicate(batch_size=2)
    assert counts["replicated"] >= 5 and counts["failed"] == 0
    rows = MemoryReplica.objects.filter(tenant=tenant).order_by("wal_timestamp", "id")
    assert [r.event_id for r in rows] == [w.event_id for w in writes]
    assert [r.payload["text"] for r in rows] == ["alpha", "beta", "gamma", "delta", "epsilon"]
    assert [r.role for r in rows] == ["user", "assistant", "user", "assistant", "user"]
    assert all(r.session_id == writes[0].session_id for r in rows)
    # a second run and a replayed WAL record change nothing
    MemoryWal.objects.filter(tenant=tenant).update(state="pending", replicated_at=None)
    memory_replicate()
    assert MemoryReplica.objects.filter(tenant=tenant).count() == 5
    assert not MemoryWal.objects.filter(tenant=tenant, state="pending").exists()


def test_a_bad_record_fails_alone_goes_to_dead_letters_and_replays_once_fixed():
    tenant = make_tenant()
    good, bad = delivered(tenant, ["fine record", "broken record"])
    MemoryWal.objects.filter(event_id=bad.event_id).update(role="robot")  # the replica refuses this role
    counts = memory_replicate()
    assert counts["failed"] == 1
    assert MemoryReplica.objects.filter(event_id=good.event_id).exists()
    assert not MemoryReplica.objects.filter(event_id=bad.event_id).exists()
    record = MemoryWal.objects.get(event_id=bad.event_id)
    assert record.state == "failed" and record.last_error
    letter = DeadLetter.objects.get(topic="memory.replicate", event__event_id=str(bad.event_id))
    assert memory_replication_lag_seconds() == 0.0  # a failed record is a dead letter, not lag

    MemoryWal.objects.filter(pk=record.pk).update(role="assistant")  # the fix
    assert dead_letter_replay(dead_letter=letter) is True
    memory_replicate()
    assert MemoryReplica.objects.get(event_id=bad.event_id).role == "assistant"
    letter.refresh_from_db()
    assert letter.replayed_at is not None
    assert dead_letter_replay(dead_letter=letter) is False  # nothing left to replay


def test_forget_removes_the_session_from_the_replica():
    tenant = make_tenant()
    session_id = uuid.uuid4()
    delivered(tenant, ["one", "two"], session_id=session_id)
    (other,) = delivered(tenant, ["unrelated"])
    memory_replicate()
    assert MemoryReplica.objects.filter(tenant=tenant).count() == 3

    deliver_stream(forget_session(tenant, session_id), EmbeddedMemory())
    memory_replicate()
    assert list(MemoryReplica.objects.filter(tenant=tenant).values_list("event_id", flat=True)) == [
        other.event_id
    ]


def test_lag_and_depth():
    tenant = make_tenant()
    depth = memory_outbox_depth()
    pending = enqueue(tenant, ["waiting 1", "waiting 2"])
    assert memory_outbox_depth() == depth + 2
    (write,) = delivered(tenant, ["lagging"])
    MemoryWal.objects.exclude(event_id=write.event_id).filter(state="pending").update(state="replicated")
    MemoryWal.objects.filter(event_id=write.event_id).update(
        wal_timestamp=timezone.now() - timedelta(seconds=30)
    )
    assert memory_replication_lag_seconds() >= 30
    memory_replicate()
    assert memory_replication_lag_seconds() == 0.0
    MemoryWrite.objects.filter(pk__in=[w.pk for w in pending]).update(state="delivered")
    assert memory_outbox_depth() == depth


def test_memory_status_command_reports_backlog_and_lag():
    tenant = make_tenant()
    enqueue(tenant, ["one", "two", "three"])
    (write,) = delivered(tenant, ["replicate me"])
    MemoryWal.objects.filter(event_id=write.event_id).update(
        wal_timestamp=timezone.now() - timedelta(seconds=12)
    )
    out = io.StringIO()
    call_command("memory_status", "--json", stdout=out)
    status = json.loads(out.getvalue())
    assert status["adapter"] == "embedded"
    assert status["outbox"]["pending"] >= 3 and status["outbox"]["due"] >= 3
    assert status["replication"]["wal_pending"] >= 1 and status["replication"]["lag_seconds"] >= 12
    text = io.StringIO()
    call_command("memory_status", stdout=text)
    assert "write outbox:" in text.getvalue() and "lag" in text.getvalue()
