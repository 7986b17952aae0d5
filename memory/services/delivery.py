"""Delivering memory writes: leases, in-order streams, backoff, the sweep, dead letters.

The writes of one session form a *stream* delivered strictly in ``id`` order:
only its head (the oldest pending write) can be leased. A lease is taken with a
compare-and-set ``UPDATE`` (no transaction is held during HTTP calls, which
matters on SQLite where a write transaction locks the whole database).

- ``claim_head`` leases a stream's head for a task that is about to be queued.
- ``memory_deliver`` (the ``memory.deliver`` task) swaps that dispatch lease
  for its own, calls the port, records the outcome, then moves on to the next
  write of the stream. A duplicate or stale task finds the lease gone and does
  nothing; a worker that dies leaves a lease that expires, and the sweep takes
  the write again (the service dedupes by idempotency key).
- A retryable failure reschedules the head with exponential backoff (1 s
  doubling to 60 s, jittered) or ``Retry-After`` if longer; the stream waits
  behind it. The retry budget is a time span (``SOMA_MEMORY_RETRY_BUDGET_SECONDS``,
  24 h): a write failing after its deadline, or rejected as invalid, moves to
  the dead letters and the stream goes on.
- ``memory_sweep`` (beat) leases due heads with ``select_for_update(skip_locked=True)``,
  so several sweepers never take the same write.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from memory.adapters import memory_port
from memory.models import MemoryWal, MemoryWrite
from memory.port import (
    Forget,
    MemoryPort,
    MemoryRejected,
    MemoryServiceError,
    MemoryUnavailable,
    Remember,
    store_transaction,
)
from somaagent.models import DeadLetter
from somaagent.retry import backoff_delay

log = logging.getLogger(__name__)

# The dead letters of memory writes carry this topic (replayed by memory.services.deadletters).
WRITE_TOPIC = "memory.write"

PENDING = MemoryWrite.State.PENDING
MAX_WRITES_PER_TASK = 50


@dataclass(frozen=True)
class Claim:
    write_id: int
    token: str


@dataclass
class DeliveryResult:
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    stale: bool = False
    next_claim: Claim | None = None
    errors: list[str] = field(default_factory=list)

    def merge(self, other: DeliveryResult) -> None:
        self.delivered += other.delivered
        self.retrying += other.retrying
        self.dead += other.dead
        self.stale = self.stale or other.stale
        self.errors += other.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "delivered": self.delivered,
            "retrying": self.retrying,
            "dead": self.dead,
            "stale": self.stale,
        }


def _lease_free(now: datetime) -> Q:
    return Q(lease_until__isnull=True) | Q(lease_until__lte=now)


def _lease_stream_head(*, tenant_id: Any, session_id: Any, lease_seconds: float) -> MemoryWrite | None:
    """Lease the head of a session's stream if it is due and free, and load it: one statement
    (the head is found, checked and leased by the same conditional update)."""
    now = timezone.now()
    table = MemoryWrite._meta.db_table
    at = connection.ops.adapt_datetimefield_value
    tenant = MemoryWrite._meta.get_field("tenant_id").get_db_prep_value
    session = MemoryWrite._meta.get_field("session_id").get_db_prep_value
    rows = MemoryWrite.objects.raw(
        f"UPDATE {table} SET lease_owner = %s, lease_until = %s"
        f" WHERE id = (SELECT id FROM {table} WHERE tenant_id = %s AND session_id = %s AND state = %s"
        " ORDER BY id LIMIT 1)"
        " AND state = %s AND next_attempt_at <= %s AND (lease_until IS NULL OR lease_until <= %s)"
        " RETURNING *",
        [
            uuid.uuid4().hex,
            at(now + timedelta(seconds=lease_seconds)),
            tenant(tenant_id, connection, prepared=False),
            session(session_id, connection, prepared=False),
            PENDING.value,
            PENDING.value,
            at(now),
            at(now),
        ],
    )
    found = list(rows)
    return found[0] if found else None


def claim_heads(*, session_ids: list[uuid.UUID]) -> list[Claim]:
    """Lease the heads of these sessions' streams that are due and free, in one statement
    (their tasks are about to be queued)."""
    if not session_ids:
        return []
    now = timezone.now()
    token = uuid.uuid4().hex
    table = MemoryWrite._meta.db_table
    at = connection.ops.adapt_datetimefield_value
    session = MemoryWrite._meta.get_field("session_id").get_db_prep_value
    marks = ", ".join(["%s"] * len(session_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET lease_owner = %s, lease_until = %s"
            f" WHERE id IN (SELECT min(id) FROM {table} WHERE state = %s AND session_id IN ({marks})"
            " GROUP BY session_id)"
            " AND next_attempt_at <= %s AND (lease_until IS NULL OR lease_until <= %s)"
            " RETURNING id",
            [
                token,
                at(now + timedelta(seconds=settings.SOMA.memory.dispatch_lease_seconds)),
                PENDING.value,
                *[session(s, connection, prepared=False) for s in session_ids],
                at(now),
                at(now),
            ],
        )
        ids = sorted(int(row[0]) for row in cursor.fetchall())
    return [Claim(write_id=write_id, token=token) for write_id in ids]


def claim_head(*, tenant_id: uuid.UUID, session_id: uuid.UUID) -> Claim | None:
    """Lease the head of a session's stream for a task about to be queued, if it is due and free."""
    head = _lease_stream_head(
        tenant_id=tenant_id, session_id=session_id, lease_seconds=settings.SOMA.memory.dispatch_lease_seconds
    )
    return Claim(write_id=head.pk, token=head.lease_owner) if head is not None else None


def release_claims(*, claims: list[Claim]) -> None:
    """Give leases back at once (their task could not be queued)."""
    for claim in claims:
        MemoryWrite.objects.filter(pk=claim.write_id, lease_owner=claim.token).update(
            lease_owner="", lease_until=None
        )


def memory_deliver(*, write_id: int, token: str, port: MemoryPort | None = None) -> DeliveryResult:
    """Deliver the leased write, then the rest of its stream that is due (at most a batch)."""
    port = port or memory_port()
    config = settings.SOMA.memory
    result = DeliveryResult()
    write = _take_over(write_id=write_id, token=token, lease_seconds=config.delivery_lease_seconds)
    if write is None:
        result.stale = True
        return result
    for _ in range(MAX_WRITES_PER_TASK):
        if not _attempt(write, owner=write.lease_owner, port=port, result=result):
            return result
        nxt = _lease_stream_head(
            tenant_id=write.tenant_id,
            session_id=write.session_id,
            lease_seconds=config.delivery_lease_seconds,
        )
        if nxt is None:
            return result
        write = nxt
    # A long stream: hand the rest to a new task so one task does not hog a worker.
    result.next_claim = Claim(write_id=write.pk, token=write.lease_owner)
    return result


def _take_over(*, write_id: int, token: str, lease_seconds: float) -> MemoryWrite | None:
    """Swap the dispatch lease ``token`` for this task's own and load the write: one statement.
    None when the lease is gone (a duplicate or stale task)."""
    table = MemoryWrite._meta.db_table
    at = connection.ops.adapt_datetimefield_value
    rows = MemoryWrite.objects.raw(
        f"UPDATE {table} SET lease_owner = %s, lease_until = %s"
        " WHERE id = %s AND state = %s AND lease_owner = %s RETURNING *",
        [
            uuid.uuid4().hex,
            at(timezone.now() + timedelta(seconds=lease_seconds)),
            int(write_id),
            PENDING.value,
            token,
        ],
    )
    found = list(rows)
    return found[0] if found else None


def _request(write: MemoryWrite) -> Remember | Forget:
    payload = write.payload
    if write.op == MemoryWrite.Op.FORGET:
        return Forget(
            tenant=str(write.tenant_id),
            namespace=str(payload["namespace"]),
            session_id=str(write.session_id),
            key=write.idempotency_key,
        )
    return Remember(
        tenant=str(write.tenant_id),
        namespace=str(payload["namespace"]),
        key=write.idempotency_key,
        value=dict(payload["value"]),
        tags=tuple(payload.get("tags") or ()),
    )


def _attempt(write: MemoryWrite, *, owner: str, port: MemoryPort, result: DeliveryResult) -> bool:
    """One call to the service and its bookkeeping; True if the write was delivered. With the
    embedded store the item, the delivered mark and the WAL row are one transaction."""
    try:
        request = _request(write)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        _record_failure(write, owner=owner, error=MemoryRejected(f"malformed write: {exc!r}"), result=result)
        return False
    called = False
    try:
        with store_transaction(port):
            if isinstance(request, Forget):
                port.forget(request)
            else:
                port.remember(request)
            called = True
            done = _mark_delivered(write, owner=owner)
    except Exception as exc:
        if called:
            raise  # the bookkeeping failed, not the store: the lease runs out and the sweep retries
        if not isinstance(exc, MemoryServiceError):
            # An adapter bug must not lose the write: retry it within its budget.
            log.exception("memory delivery raised unexpectedly", extra={"memory_write_id": write.pk})
            exc = MemoryUnavailable(repr(exc))
        _record_failure(write, owner=owner, error=exc, result=result)
        return False
    if not done:
        log.warning("memory write lease lost during delivery", extra={"memory_write_id": write.pk})
        return False
    result.delivered += 1
    return True


def _mark_delivered(write: MemoryWrite, *, owner: str) -> bool:
    """The write is delivered, and its WAL row written, if this owner still holds its lease
    (in the store's transaction when there is one: no savepoint)."""
    now = timezone.now()
    with transaction.atomic(savepoint=False):
        done = MemoryWrite.objects.filter(pk=write.pk, state=PENDING, lease_owner=owner).update(
            state=MemoryWrite.State.DELIVERED,
            delivered_at=now,
            lease_owner="",
            lease_until=None,
            last_error="",
        )
        if done:
            _wal_append(write, now=now)
    return bool(done)


def _wal_append(write: MemoryWrite, *, now: datetime) -> None:
    value = write.payload.get("value") or {}
    MemoryWal.objects.bulk_create(
        [
            MemoryWal(
                event_id=write.event_id,
                write_id=write.pk,
                op=write.op,
                tenant_id=write.tenant_id,
                session_id=write.session_id,
                persona_id=write.persona_id,
                role=str(value.get("role", "")) if write.op == MemoryWrite.Op.REMEMBER else "",
                payload=value if write.op == MemoryWrite.Op.REMEMBER else write.payload,
                wal_timestamp=now,
            )
        ],
        ignore_conflicts=True,
    )


def _record_failure(
    write: MemoryWrite, *, owner: str, error: MemoryServiceError, result: DeliveryResult
) -> None:
    config = settings.SOMA.memory
    now = timezone.now()
    with transaction.atomic():
        row = (
            MemoryWrite.objects.select_for_update()
            .filter(pk=write.pk, state=PENDING, lease_owner=owner)
            .first()
        )
        if row is None:
            return
        row.retry_count += 1
        row.last_error = error.message[:2000]
        row.lease_owner, row.lease_until = "", None
        result.errors.append(error.message)
        if isinstance(error, MemoryRejected) or now >= row.retry_deadline:
            _dead_letter(
                row, reason="rejected" if isinstance(error, MemoryRejected) else "retry budget spent"
            )
            result.dead += 1
            return
        delay = backoff_delay(
            row.retry_count,
            retry_after=getattr(error, "retry_after", None),
            base=config.backoff_base_seconds,
            cap=config.backoff_max_seconds,
        )
        # The last try happens at the deadline at the latest.
        row.next_attempt_at = min(now + timedelta(seconds=delay), max(row.retry_deadline, now))
        row.save(update_fields=["retry_count", "last_error", "lease_owner", "lease_until", "next_attempt_at"])
        result.retrying += 1
    log.warning(
        "memory write failed; will retry",
        extra={"memory_write_id": write.pk, "retry_count": row.retry_count, "error": row.last_error[:300]},
    )


def _dead_letter(row: MemoryWrite, *, reason: str) -> None:
    row.state = MemoryWrite.State.DEAD
    row.save(update_fields=["state", "retry_count", "last_error", "lease_owner", "lease_until"])
    DeadLetter.objects.create(
        topic=WRITE_TOPIC,
        event={
            "memory_write_id": row.pk,
            "idempotency_key": row.idempotency_key,
            "tenant": str(row.tenant_id),
            "session_id": str(row.session_id),
            "persona_id": str(row.persona_id) if row.persona_id else None,
            "event_id": str(row.event_id),
            "op": row.op,
            "payload": row.payload,
            "reason": reason,
        },
        error=row.last_error,
        attempts=row.retry_count,
    )
    log.error(
        "memory write moved to the dead letters",
        extra={"memory_write_id": row.pk, "reason": reason, "error": row.last_error[:300]},
    )


def memory_sweep(*, batch_size: int = 200) -> list[Claim]:
    """Lease every due stream head (not held by anyone); the caller queues a task per claim."""
    now = timezone.now()
    lease = timedelta(seconds=settings.SOMA.memory.dispatch_lease_seconds)
    earlier_pending = MemoryWrite.objects.filter(
        state=PENDING, session_id=OuterRef("session_id"), id__lt=OuterRef("id")
    )
    claims: list[Claim] = []
    with transaction.atomic():
        heads = list(
            MemoryWrite.objects.select_for_update(skip_locked=True)
            .filter(state=PENDING, next_attempt_at__lte=now)
            .filter(_lease_free(now))
            .filter(~Exists(earlier_pending))
            .order_by("id")
            .values_list("id", flat=True)[:batch_size]
        )
        for write_id in heads:
            token = uuid.uuid4().hex
            MemoryWrite.objects.filter(pk=write_id).update(lease_owner=token, lease_until=now + lease)
            claims.append(Claim(write_id=write_id, token=token))
    return claims
