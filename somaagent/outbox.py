"""Transactional outbox: write in the business transaction, publish after commit.

``outbox_enqueue`` adds a row inside the caller's transaction and, once that
commits, publishes it at once (the fast path). Whatever the fast path missed —
broker down, process killed between commit and publish — the beat sweep
publishes later; it is safe to run in several workers at once
(``select_for_update(skip_locked=True)``). A row that cannot be published
within ``SOMA_OUTBOX_MAX_AGE_SECONDS`` moves to the dead-letter queue.

Consumers are idempotent, so publishing a row twice (fast path and sweep racing)
is harmless.

The fast path runs off the request: after commit the row goes to the
process's publisher thread (``somaagent.batcher``), which publishes whatever
has committed since its last round through one producer in one Redis pipeline
(kombu's ``Producer.batch``), and hands the ids to the marker thread, which
sets ``published_at`` for all of them in one UPDATE per
``SOMA_OUTBOX_MARK_INTERVAL_SECONDS`` (0.2 s). An accept is then one
transaction and no broker round trip. Both stay well inside the sweep's
minimum age (``SOMA_OUTBOX_SWEEP_MIN_AGE_SECONDS``, 2 s): the sweep does not
publish a row the fast path sent unless its mark was lost (process killed,
database away), and then it is one harmless duplicate. Run inside a
transaction that is still open (a caller's, a test's), the fast path
publishes and marks on the caller's thread and connection, the only one that
sees the row.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from somaagent.audit import Actor, audit_record
from somaagent.batcher import Batcher
from somaagent.environment import env_float
from somaagent.models import DeadLetter, OutboxMessage
from somaagent.retry import backoff_delay
from somaagent.sql import insert_objects

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    task: str
    queue: str


# topic -> Celery task; packages register their topics at import time.
ROUTES: dict[str, Route] = {}

_breaker_lock = threading.Lock()
_broker_down_until = 0.0
BREAKER_SECONDS = 2.0


def register_topic(topic: str, *, task: str, queue: str) -> None:
    ROUTES[topic] = Route(task=task, queue=queue)


# dead-letter topic -> replayer, for dead letters that do not come from this outbox (memory writes, …).
REPLAYERS: dict[str, Callable[[DeadLetter], bool]] = {}


def register_replayer(topic: str, replayer: Callable[[DeadLetter], bool]) -> None:
    REPLAYERS[topic] = replayer


def outbox_enqueue(*, topic: str, payload: dict[str, Any], dedupe_key: str) -> OutboxMessage | None:
    """Add a message in the current transaction; None if ``dedupe_key`` was already used."""
    if topic not in ROUTES:
        raise ValueError(f"unknown outbox topic {topic!r}")
    message = _insert_unless_duplicate(
        OutboxMessage(topic=topic, payload=payload, dedupe_key=dedupe_key, next_attempt_at=timezone.now())
    )
    if message is not None:
        transaction.on_commit(lambda: _after_commit(message))
    return message


def _insert_unless_duplicate(message: OutboxMessage) -> OutboxMessage | None:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING id`` (the one unique key is ``dedupe_key``): one
    round trip, and no savepoint to keep a duplicate key from aborting the caller's transaction."""
    rows = insert_objects([message], ignore_conflicts=True, returning=[OutboxMessage._meta.pk.name])
    if not rows:
        return None
    message.pk = rows[0][0]
    message._state.adding = False
    return message


def _send(messages: list[OutboxMessage], contexts: list[contextvars.Context] | None = None) -> None:
    """Publish once, failing fast: the outbox retries, so nothing here waits for the broker.

    ``retry=False`` alone does not do it: a pooled connection that has to
    reconnect goes through kombu's ``default_channel``, which keeps retrying
    (sleeping) for ``broker_connection_timeout`` — 2 s inside the request that
    accepted the message. One connection attempt, then the error. Several
    messages go out in one round trip (one Redis pipeline; other transports
    publish them one by one). ``contexts``: each message is published in the
    context of the request that committed it (its request id and trace).
    """
    app = current_app  # the project's Celery app (somaagent/celery.py), in every thread
    with app.producer_pool.acquire(block=True) as producer:
        producer.connection.ensure_connection(max_retries=0, timeout=app.conf.broker_connection_timeout)
        with producer.batch():
            for i, message in enumerate(messages):
                route = ROUTES[message.topic]
                publish = functools.partial(
                    app.send_task,
                    route.task,
                    kwargs=message.payload,
                    queue=route.queue,
                    routing_key=route.queue,
                    retry=False,
                    producer=producer,
                    # What Flower shows, without Celery's saferepr walking the payload each time.
                    argsrepr="()",
                    kwargsrepr=repr(message.payload),
                    # Nobody waits for these results; without this every publish subscribes
                    # to the result channel (and builds a result backend per web thread).
                    ignore_result=True,
                )
                if contexts is not None:
                    contexts[i].run(publish)
                else:
                    publish()


def _broker_presumed_down() -> bool:
    return time.monotonic() < _broker_down_until


def _mark_broker_down() -> None:
    global _broker_down_until
    with _breaker_lock:
        _broker_down_until = time.monotonic() + BREAKER_SECONDS


def outbox_publish_now(*, message_id: int, message: OutboxMessage | None = None) -> bool:
    """The fast path after commit; failures are left for the sweep.

    ``message`` is the row just committed (saves reading it back); a row the
    sweep published meanwhile may go out twice, which consumers tolerate.
    """
    if _broker_presumed_down():
        return False
    if message is None:
        message = OutboxMessage.objects.filter(pk=message_id, published_at__isnull=True).first()
        if message is None:
            return False
    return _publish([message])


def _after_commit(message: OutboxMessage) -> None:
    if connection.in_atomic_block:
        _publish([message])
    else:
        _publisher.add((message, contextvars.copy_context()))


def _publish_handed_over(batch: list[tuple[OutboxMessage, contextvars.Context]]) -> None:
    _publish([message for message, _ in batch], [context for _, context in batch])


def _publish(messages: list[OutboxMessage], contexts: list[contextvars.Context] | None = None) -> bool:
    """The fast path for rows just committed; a failure is recorded on them and left for the sweep."""
    if _broker_presumed_down():
        return False
    try:
        _send(messages, contexts)
    except Exception as exc:  # kombu raises many connection error types
        _mark_broker_down()
        log.warning(
            "outbox fast-path publish failed; the sweep will retry",
            extra={"outbox_ids": [m.pk for m in messages], "error": repr(exc)},
        )
        OutboxMessage.objects.filter(pk__in=[m.pk for m in messages]).update(last_error=repr(exc)[:2000])
        return False
    for message in messages:
        _mark_published(message.pk)
    return True


def _mark_published(message_id: int) -> None:
    if connection.in_atomic_block:
        _update_published([message_id])  # rides on the open transaction
    else:
        _marks.add(message_id)


def _update_published(ids: list[int]) -> None:
    OutboxMessage.objects.filter(pk__in=ids, published_at__isnull=True).update(published_at=timezone.now())


def _mark_many(ids: list[int]) -> None:
    try:
        _update_published(ids)
    except (DatabaseError, RuntimeError) as exc:  # RuntimeError: no database access (tests)
        # Unmarked rows are published again by the sweep; consumers are idempotent.
        log.warning("could not mark published outbox rows", extra={"rows": len(ids), "error": repr(exc)})


_marks: Batcher[int] = Batcher(
    "outbox-marks", _mark_many, interval=env_float("SOMA_OUTBOX_MARK_INTERVAL_SECONDS", 0.2)
)
_publisher: Batcher[tuple[OutboxMessage, contextvars.Context]] = Batcher(
    "outbox-publisher", _publish_handed_over
)


def outbox_marks_flush() -> int:
    """Publish what the fast path holds and mark its published rows now (tests, benchmarks)."""
    _publisher.flush()
    return _marks.flush()


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=backoff_delay(attempts, base=1.0, cap=60.0))


def outbox_sweep(*, batch_size: int = 200) -> dict[str, int]:
    """Publish due unpublished rows; returns counts for logs and tests."""
    now = timezone.now()
    min_age = timedelta(seconds=settings.SOMA.outbox_sweep_min_age_seconds)
    max_age = timedelta(seconds=settings.SOMA.outbox_max_age_seconds)
    counts = {"published": 0, "failed": 0, "dead": 0}
    with transaction.atomic():
        due = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(published_at__isnull=True, next_attempt_at__lte=now, created_at__lte=now - min_age)
            .order_by("id")[:batch_size]
        )
        for message in due:
            try:
                _send([message])
            except Exception as exc:  # kombu raises many connection error types
                message.attempts += 1
                message.last_error = repr(exc)[:2000]
                if now - message.created_at >= max_age:
                    _dead_letter(message)
                    counts["dead"] += 1
                    continue
                message.next_attempt_at = now + _backoff(message.attempts)
                message.save(update_fields=["attempts", "last_error", "next_attempt_at"])
                counts["failed"] += 1
                break  # the broker is down: the rest waits for the next sweep
            message.attempts += 1
            message.published_at = timezone.now()
            message.save(update_fields=["attempts", "published_at"])
            counts["published"] += 1
    if counts["failed"] or counts["dead"]:
        log.warning("outbox sweep could not publish everything", extra=counts)
    return counts


def _dead_letter(message: OutboxMessage) -> None:
    DeadLetter.objects.create(
        topic=message.topic,
        event={"outbox_id": message.pk, "payload": message.payload, "dedupe_key": message.dedupe_key},
        error=message.last_error,
        attempts=message.attempts,
    )
    message.delete()


def dead_letter_replay(*, dead_letter: DeadLetter, actor: Any = None) -> bool:
    """Re-enqueue a dead letter (its package's replayer, or the outbox) and audit it; False if nothing was."""
    with transaction.atomic():
        replayed = _replay(dead_letter)
        if replayed:
            audit_record(
                actor=actor or Actor.system(),
                action="dead_letter.replayed",
                target=f"dead_letter:{dead_letter.pk}",
                details={"topic": dead_letter.topic, "attempts": dead_letter.attempts},
            )
    return replayed


def _replay(dead_letter: DeadLetter) -> bool:
    replayer = REPLAYERS.get(dead_letter.topic)
    if replayer is not None:
        return replayer(dead_letter)
    if dead_letter.topic not in ROUTES or "payload" not in dead_letter.event:
        return False
    with transaction.atomic():
        outbox_enqueue(
            topic=dead_letter.topic,
            payload=dead_letter.event["payload"],
            dedupe_key=f"replay:{dead_letter.pk}:{timezone.now().timestamp()}",
        )
        dead_letter.replayed_at = timezone.now()
        dead_letter.save(update_fields=["replayed_at"])
    return True
