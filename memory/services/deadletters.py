"""Replaying memory dead letters (admin action on ``dlq``, through ``somaagent.outbox.dead_letter_replay``).

- ``memory.write``: the write goes back into ``memory_write_outbox`` as pending
  with a fresh retry budget, under the same idempotency key (the service
  dedupes, so a write that did arrive once is not stored twice). A write of a
  session that has since been forgotten is not replayed.
- ``memory.replicate``: the WAL record goes back to pending for the replicator.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from memory.models import MemoryWal, MemoryWrite
from memory.services.dispatch import memory_stream_kick, replicate_soon
from memory.services.writes import retry_deadline
from somaagent.models import DeadLetter

log = logging.getLogger(__name__)


def memory_write_replay(dead_letter: DeadLetter) -> bool:
    """Re-enqueue a dead memory write; False if there is nothing to replay."""
    event = dead_letter.event
    key = event.get("idempotency_key")
    if not key:
        return False
    now = timezone.now()
    with transaction.atomic():
        letter = DeadLetter.objects.select_for_update().get(pk=dead_letter.pk)
        write = MemoryWrite.objects.select_for_update().filter(idempotency_key=key).first()
        if write is not None and write.state != MemoryWrite.State.DEAD:
            return False  # already pending again or delivered
        op = write.op if write is not None else event.get("op", MemoryWrite.Op.REMEMBER)
        session_id = write.session_id if write is not None else uuid.UUID(event["session_id"])
        if (
            op == MemoryWrite.Op.REMEMBER
            and MemoryWrite.objects.filter(session_id=session_id, op=MemoryWrite.Op.FORGET).exists()
        ):
            log.warning("not replaying a memory write of a forgotten session", extra={"key": key})
            return False
        if write is None:
            write = _recreate(event, now=now)
        else:
            write.state = MemoryWrite.State.PENDING
            write.retry_count = 0
            write.next_attempt_at = now
            write.retry_deadline = retry_deadline(now)
            write.last_error = ""
            write.lease_owner, write.lease_until = "", None
            write.save()
        letter.replayed_at = now
        letter.save(update_fields=["replayed_at"])
        tenant_id, sid = write.tenant_id, write.session_id

        transaction.on_commit(lambda: memory_stream_kick(tenant_id=tenant_id, session_id=sid))
    return True


def _recreate(event: dict, *, now: datetime) -> MemoryWrite:
    return MemoryWrite.objects.create(
        tenant_id=uuid.UUID(event["tenant"]),
        session_id=uuid.UUID(event["session_id"]),
        persona_id=uuid.UUID(event["persona_id"]) if event.get("persona_id") else None,
        event_id=uuid.UUID(event["event_id"]),
        op=event.get("op", MemoryWrite.Op.REMEMBER),
        payload=event["payload"],
        idempotency_key=event["idempotency_key"],
        created_at=now,
        next_attempt_at=now,
        retry_deadline=retry_deadline(now),
    )


def memory_replication_replay(dead_letter: DeadLetter) -> bool:
    """Put a failed WAL record back in the replicator's queue; False if there is nothing to replay."""
    event = dead_letter.event
    with transaction.atomic():
        letter = DeadLetter.objects.select_for_update().get(pk=dead_letter.pk)
        record = MemoryWal.objects.select_for_update().filter(event_id=event.get("event_id")).first()
        if record is None:
            record = MemoryWal.objects.create(
                event_id=uuid.UUID(event["event_id"]),
                write_id=event.get("write_id"),
                op=event.get("op", MemoryWrite.Op.REMEMBER),
                tenant_id=uuid.UUID(event["tenant"]),
                session_id=uuid.UUID(event["session_id"]),
                persona_id=uuid.UUID(event["persona_id"]) if event.get("persona_id") else None,
                role=event.get("role", ""),
                payload=event.get("payload") or {},
                wal_timestamp=datetime.fromisoformat(event["wal_timestamp"]),
            )
        elif record.state != MemoryWal.State.FAILED:
            return False
        else:
            record.state = MemoryWal.State.PENDING
            record.last_error = ""
            record.save(update_fields=["state", "last_error"])
        letter.replayed_at = timezone.now()
        letter.save(update_fields=["replayed_at"])

        transaction.on_commit(replicate_soon)
    return True
