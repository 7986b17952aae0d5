"""Memory's part in operations: its gauges on ``/metrics`` and retention of what is done with."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Min, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from memory.models import MemoryReplica, MemoryWal, MemoryWrite
from memory.selectors import memory_replication_lag_seconds
from somaagent.housekeeping import delete_in_batches


def memory_metrics() -> Iterable[Any]:
    """Write backlog and its oldest age, WAL backlog, replication lag (memory DLQ: ``soma_dlq_size``)."""
    now = timezone.now()
    pending = Q(state=MemoryWrite.State.PENDING)
    writes = MemoryWrite.objects.aggregate(
        n=Count("id", filter=pending), oldest=Min("created_at", filter=pending)
    )
    wal = MemoryWal.objects.filter(state=MemoryWal.State.PENDING).count()
    oldest = writes["oldest"]
    return [
        GaugeMetricFamily("soma_memory_write_backlog", "Memory writes not yet delivered.", value=writes["n"]),
        GaugeMetricFamily(
            "soma_memory_write_oldest_age_seconds",
            "Age of the oldest undelivered memory write (0 when none).",
            value=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        ),
        GaugeMetricFamily("soma_memory_wal_backlog", "WAL records not yet in memory_replica.", value=wal),
        GaugeMetricFamily(
            "soma_memory_replication_lag_seconds",
            "Age of the oldest WAL record not yet replicated (0 when caught up).",
            value=memory_replication_lag_seconds(now=now),
        ),
    ]


def memory_replica_prune() -> int:
    """Delete replica rows older than ``SOMA_REPLICA_RETENTION_SECONDS``."""
    cutoff = timezone.now() - timedelta(seconds=settings.SOMA_OPS.replica_retention_seconds)
    return delete_in_batches(MemoryReplica.objects.filter(created_at__lt=cutoff).order_by("id"))


def memory_writes_prune() -> int:
    """Delete delivered writes older than the outbox retention (pending and dead ones stay)."""
    cutoff = timezone.now() - timedelta(seconds=settings.SOMA_OPS.outbox_retention_seconds)
    done = MemoryWrite.objects.filter(state=MemoryWrite.State.DELIVERED, delivered_at__lt=cutoff)
    return delete_in_batches(done.order_by("id"))


def memory_wal_prune() -> int:
    """Delete replicated WAL records as old as the replica's retention: the replica drops them too."""
    cutoff = timezone.now() - timedelta(seconds=settings.SOMA_OPS.replica_retention_seconds)
    done = MemoryWal.objects.filter(state=MemoryWal.State.REPLICATED, replicated_at__lt=cutoff)
    return delete_in_batches(done.order_by("id"))
