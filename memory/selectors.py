"""Reads for operators: outbox depth, replication lag, a status summary (metrics come from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Min, Q
from django.utils import timezone

from memory.models import MemoryReplica, MemoryWal, MemoryWrite
from somaagent.models import DeadLetter

MEMORY_TOPICS = ("memory.write", "memory.replicate")


def memory_outbox_depth() -> int:
    """Writes waiting to be delivered (pending, whether due, leased or backing off)."""
    return MemoryWrite.objects.filter(state=MemoryWrite.State.PENDING).count()


def memory_replication_lag_seconds(*, now: datetime | None = None) -> float:
    """Now minus the timestamp of the oldest WAL record not yet replicated; 0 when caught up."""
    oldest = MemoryWal.objects.filter(state=MemoryWal.State.PENDING).aggregate(t=Min("wal_timestamp"))["t"]
    if oldest is None:
        return 0.0
    return max(0.0, ((now or timezone.now()) - oldest).total_seconds())


def memory_status(*, now: datetime | None = None) -> dict[str, Any]:
    """Backlog and lag in one document (the ``memory_status`` command and ``/readyz``)."""
    now = now or timezone.now()
    pending = Q(state=MemoryWrite.State.PENDING)
    writes = MemoryWrite.objects.aggregate(
        pending=Count("id", filter=pending),
        due=Count("id", filter=pending & Q(next_attempt_at__lte=now)),
        leased=Count("id", filter=pending & Q(lease_until__gt=now)),
        retrying=Count("id", filter=pending & Q(retry_count__gt=0)),
        delivered=Count("id", filter=Q(state=MemoryWrite.State.DELIVERED)),
        dead=Count("id", filter=Q(state=MemoryWrite.State.DEAD)),
        oldest=Min("created_at", filter=pending),
    )
    oldest = writes.pop("oldest")
    wal = MemoryWal.objects.aggregate(
        pending=Count("id", filter=Q(state=MemoryWal.State.PENDING)),
        failed=Count("id", filter=Q(state=MemoryWal.State.FAILED)),
    )
    return {
        "adapter": "remote" if settings.SOMA.memory.remote else "embedded",
        "outbox": {
            **writes,
            "oldest_pending_age_seconds": round((now - oldest).total_seconds(), 3) if oldest else 0.0,
        },
        "replication": {
            "wal_pending": wal["pending"],
            "wal_failed": wal["failed"],
            "lag_seconds": round(memory_replication_lag_seconds(now=now), 3),
            "replica_rows": MemoryReplica.objects.count(),
        },
        "dead_letters_unreplayed": DeadLetter.objects.filter(
            topic__in=MEMORY_TOPICS, replayed_at__isnull=True
        ).count(),
    }
