"""Housekeeping on beat: prune what has served its purpose, by retention settings.

- published outbox rows older than ``SOMA_OUTBOX_RETENTION_SECONDS``;
- whatever the apps register in their ``AppConfig.ready()`` (``register_pruner``):
  idempotency records and orphaned stream buffers (``conversations.housekeeping``),
  old memory replicas and delivered writes (``memory.ops``), and documents left
  ``processing`` by a worker that died, queued again or failed (``documents.services.ingest``).

Every step deletes in bounded batches and is safe to run in several workers at
once (deleting what is already gone deletes nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Model, QuerySet
from django.utils import timezone

from somaagent.metrics import housekeeping_pruned
from somaagent.models import OutboxMessage

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


def cutoff(seconds: int) -> Any:
    return timezone.now() - timedelta(seconds=seconds)


def outbox_prune() -> int:

    before = cutoff(settings.SOMA_OPS.outbox_retention_seconds)
    return delete_in_batches(OutboxMessage.objects.filter(published_at__lt=before).order_by("id"))


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
