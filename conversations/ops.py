"""Operations of conversations: what the beat's housekeeping prunes, what /metrics counts.

- idempotency records older than ``SOMA_IDEMPOTENCY_RETENTION_SECONDS`` (a
  replay after that starts a new message);
- stream buffers of sessions that no longer exist (a delete whose buffer
  removal failed, or a session deleted while a reply was still streaming), and
  buffers without a TTL; the others expire by their TTL.

And ``soma_turns_active{status}``, computed when ``/metrics`` is scraped. Both
registered (``somaagent.housekeeping``, ``somaagent.metrics``) in
``ConversationsConfig.ready()``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from conversations.models import IdempotencyRecord, Session, Turn
from conversations.stream_buffer import stream_key
from somaagent.housekeeping import cutoff, delete_in_batches
from somaagent.redis_client import sync_redis


def idempotency_prune() -> int:
    before = cutoff(settings.SOMA_OPS.idempotency_retention_seconds)
    return delete_in_batches(IdempotencyRecord.objects.filter(created_at__lt=before).order_by("id"))


def _session_id_of(key: str, prefix: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(key[len(prefix) :])
    except ValueError:
        return None


def stream_buffers_sweep(*, scan_count: int = 500) -> int:
    """Delete buffers whose session is gone; give a TTL to any buffer that lost it."""
    client = sync_redis()
    prefix = stream_key("")
    removed = 0
    keys: list[str] = []

    def flush() -> int:
        by_id = {k: _session_id_of(k, prefix) for k in keys}
        alive = set(
            Session.objects.filter(pk__in=[s for s in by_id.values() if s]).values_list("pk", flat=True)
        )
        kept: list[str] = []
        orphans: list[str] = []
        for k, sid in by_id.items():
            (kept if sid in alive else orphans).append(k)
        if kept:
            pipe = client.pipeline(transaction=False)
            for k in kept:
                pipe.ttl(k)
            for k, ttl in zip(kept, pipe.execute(), strict=True):
                if ttl == -1:
                    client.expire(k, settings.SOMA.stream_buffer_ttl_seconds)
        if orphans:
            client.delete(*orphans)
        keys.clear()
        return len(orphans)

    for raw in client.scan_iter(match=f"{prefix}*", count=scan_count, _type="stream"):
        keys.append(raw.decode() if isinstance(raw, bytes) else raw)
        if len(keys) >= scan_count:
            removed += flush()
    if keys:
        removed += flush()
    return removed


def turns_source() -> Iterable[Any]:
    gauge = GaugeMetricFamily("soma_turns_active", "Turns queued or running now.", labels=["status"])
    counts: dict[str, int] = {str(s): 0 for s in Turn.ACTIVE_STATUSES}
    for row in (
        Turn.objects.filter(status__in=Turn.ACTIVE_STATUSES)
        .values("status")
        .annotate(n=Count("id"))
        .order_by()
    ):
        counts[str(row["status"])] = row["n"]
    for status, n in counts.items():
        gauge.add_metric([status], n)
    return [gauge, _ended_today()]


def _ended_today() -> Any:
    """Turns that ended since midnight UTC, by how: the dashboard's "turns and errors today"."""
    gauge = GaugeMetricFamily("soma_turns_ended_today", "Turns ended today (UTC).", labels=["status"])
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    ended = {str(s): 0 for s in (Turn.Status.COMPLETED, Turn.Status.FAILED, Turn.Status.CANCELLED)}
    for row in (
        Turn.objects.filter(finished_at__gte=midnight).values("status").annotate(n=Count("id")).order_by()
    ):
        ended[str(row["status"])] = row["n"]
    for status, n in ended.items():
        gauge.add_metric([status], n)
    return gauge
