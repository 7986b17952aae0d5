"""Housekeeping on beat: prune what has served its purpose, by retention settings.

- published outbox rows older than ``SOMA_OUTBOX_RETENTION_SECONDS``;
- idempotency records older than ``SOMA_IDEMPOTENCY_RETENTION_SECONDS`` (a
  replay after that starts a new message);
- stream buffers of sessions that no longer exist (a delete whose buffer
  removal failed, or a session deleted while a reply was still streaming), and
  buffers without a TTL; the others expire by their TTL;
- whatever other packages register (``register_pruner``: old memory replicas).

Every step deletes in bounded batches and is safe to run in several workers at
once (deleting what is already gone deletes nothing).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Model, QuerySet
from django.utils import timezone

from somaagent.metrics import housekeeping_pruned
from somaagent.redis_client import sync_redis

log = logging.getLogger(__name__)

BATCH = 1000
MAX_BATCHES = 50  # per run and kind: a huge backlog drains over several runs

Pruner = Callable[[], int]
PRUNERS: dict[str, Pruner] = {}


def register_pruner(kind: str, pruner: Pruner) -> None:
    PRUNERS[kind] = pruner


def delete_in_batches(queryset: QuerySet[Any], *, batch: int = BATCH) -> int:
    """Delete the queryset's rows ``batch`` at a time (short transactions, short locks)."""
    model: type[Model] = queryset.model
    total = 0
    for _ in range(MAX_BATCHES):
        ids = list(queryset.values_list("pk", flat=True)[:batch])
        if not ids:
            break
        deleted, _ = model._default_manager.filter(pk__in=ids).delete()
        total += deleted
        if len(ids) < batch:
            break
    return total


def _cutoff(seconds: int) -> Any:
    return timezone.now() - timedelta(seconds=seconds)


def outbox_prune() -> int:
    from somaagent.models import OutboxMessage

    cutoff = _cutoff(settings.SOMA_OPS.outbox_retention_seconds)
    return delete_in_batches(OutboxMessage.objects.filter(published_at__lt=cutoff).order_by("id"))


def idempotency_prune() -> int:
    from conversations.models import IdempotencyRecord

    cutoff = _cutoff(settings.SOMA_OPS.idempotency_retention_seconds)
    return delete_in_batches(IdempotencyRecord.objects.filter(created_at__lt=cutoff).order_by("id"))


def _session_id_of(stream_key: str, prefix: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(stream_key[len(prefix) :])
    except ValueError:
        return None


def stream_buffers_sweep(*, scan_count: int = 500) -> int:
    """Delete buffers whose session is gone; give a TTL to any buffer that lost it."""
    from conversations.models import Session
    from conversations.stream_buffer import stream_key

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


register_pruner("outbox", outbox_prune)
register_pruner("idempotency", idempotency_prune)
register_pruner("stream_buffers", stream_buffers_sweep)


def housekeeping_run() -> dict[str, int]:
    """Run every pruner; one failing does not stop the others. Returns counts by kind."""
    counts: dict[str, int] = {}
    for kind, pruner in PRUNERS.items():
        try:
            counts[kind] = pruner()
        except Exception:  # logged with context; the next run tries again
            log.exception("housekeeping step failed", extra={"kind": kind})
            counts[kind] = -1
            continue
        housekeeping_pruned(kind=kind, count=counts[kind])
    if any(counts.values()):
        log.info("housekeeping done", extra={"pruned": counts})
    return counts
