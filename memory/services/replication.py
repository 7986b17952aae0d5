"""The replicator: copy delivered writes from the WAL (``memory_wal``) into ``memory_replica``.

Batches of pending WAL records are taken with ``select_for_update(skip_locked=True)``
and inserted together; ``event_id`` is unique in the replica, so replaying a
record changes nothing. When a batch fails, its records are retried one by one
and only those that still fail are marked ``failed`` and dead-lettered
(topic ``memory.replicate``); staff replay them from admin. A ``forget`` record
removes the session's rows from the replica.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError, transaction
from django.utils import timezone

from memory.models import MemoryReplica, MemoryWal, MemoryWrite
from somaagent.models import DeadLetter

log = logging.getLogger(__name__)

REPLICATE_TOPIC = "memory.replicate"


def _replica_row(record: MemoryWal) -> MemoryReplica:
    return MemoryReplica(
        event_id=record.event_id,
        session_id=record.session_id,
        persona_id=record.persona_id,
        tenant_id=record.tenant_id,
        role=record.role,
        payload=record.payload,
        wal_timestamp=record.wal_timestamp,
    )


def _insert(records: list[MemoryWal]) -> list[tuple[MemoryWal, str]]:
    """Insert replica rows for ``records``; returns the records that failed, with the error."""
    existing = set(
        MemoryReplica.objects.filter(event_id__in=[r.event_id for r in records]).values_list(
            "event_id", flat=True
        )
    )
    fresh = [r for r in records if r.event_id not in existing]
    if not fresh:
        return []
    try:
        with transaction.atomic():
            MemoryReplica.objects.bulk_create([_replica_row(r) for r in fresh])
        return []
    except DatabaseError:
        log.warning("replica batch insert failed; retrying row by row", extra={"records": len(fresh)})
    failed: list[tuple[MemoryWal, str]] = []
    for record in fresh:
        try:
            with transaction.atomic():
                if not MemoryReplica.objects.filter(event_id=record.event_id).exists():
                    _replica_row(record).save(force_insert=True)
        except DatabaseError as exc:
            failed.append((record, repr(exc)[:2000]))
    return failed


def _apply(records: list[MemoryWal]) -> list[tuple[MemoryWal, str]]:
    remembers = [r for r in records if r.op != MemoryWrite.Op.FORGET]
    failed = _insert(remembers) if remembers else []
    for record in records:
        if record.op == MemoryWrite.Op.FORGET:
            MemoryReplica.objects.filter(tenant_id=record.tenant_id, session_id=record.session_id).delete()
    return failed


def memory_replicate(*, batch_size: int = 500, max_batches: int = 20) -> dict[str, int]:
    """Replicate pending WAL records in batches; returns counts for logs and tests."""
    counts = {"replicated": 0, "failed": 0}
    for _ in range(max_batches):
        with transaction.atomic():
            records = list(
                MemoryWal.objects.select_for_update(skip_locked=True)
                .filter(state=MemoryWal.State.PENDING)
                .order_by("id")[:batch_size]
            )
            if not records:
                break
            failed = _apply(records)
            failed_ids = {r.pk for r, _ in failed}
            now = timezone.now()
            MemoryWal.objects.filter(pk__in=[r.pk for r in records if r.pk not in failed_ids]).update(
                state=MemoryWal.State.REPLICATED, replicated_at=now, last_error=""
            )
            for record, error in failed:
                _dead_letter(record, error=error)
        counts["replicated"] += len(records) - len(failed)
        counts["failed"] += len(failed)
        if len(records) < batch_size:
            break
    return counts


def _dead_letter(record: MemoryWal, *, error: str) -> None:
    MemoryWal.objects.filter(pk=record.pk).update(state=MemoryWal.State.FAILED, last_error=error)
    DeadLetter.objects.create(topic=REPLICATE_TOPIC, event=wal_letter(record), error=error, attempts=1)
    log.error(
        "memory replication failed; record moved to the dead letters",
        extra={"wal_id": record.pk, "event_id": str(record.event_id), "error": error[:300]},
    )


def wal_letter(record: MemoryWal) -> dict[str, Any]:
    return {
        "wal_id": record.pk,
        "event_id": str(record.event_id),
        "write_id": record.write_id,
        "op": record.op,
        "tenant": str(record.tenant_id),
        "session_id": str(record.session_id),
        "persona_id": str(record.persona_id) if record.persona_id else None,
        "role": record.role,
        "payload": record.payload,
        "wal_timestamp": record.wal_timestamp.isoformat(),
    }
