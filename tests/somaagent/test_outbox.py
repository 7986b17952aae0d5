"""The transactional outbox against a real broker: a redis-server of the test's own it can stop.

The Celery app of this test process is pointed at that broker for the test, so
what the outbox publishes can be read back from the queue, and stopping the
server makes publishing fail the way an outage does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import kombu
import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from kombu import pools as kombu_pools

from somaagent import outbox
from somaagent.models import DeadLetter, OutboxMessage
from somaagent.outbox import (
    dead_letter_replay,
    outbox_enqueue,
    outbox_publish_now,
    outbox_sweep,
    register_topic,
)
from tests.brokers import RedisServer, redis_broker

pytestmark = pytest.mark.django_db

TOPIC = "test.outbox"
TASK = "test.outbox_echo"
QUEUE = "test-outbox"
register_topic(TOPIC, task=TASK, queue=QUEUE)


@contextmanager
def celery_broker(url: str) -> Iterator[None]:
    """Point this process's Celery app at ``url`` (fresh connection pools both ways)."""
    from somaagent.celery import app

    def reset_pools() -> None:
        if app._pool is not None:
            app._pool.force_close_all()
        app._pool = None
        if "amqp" in app.__dict__:
            app.amqp._producer_pool = None
        # kombu keeps process-wide pools keyed by URL: a later test's broker on a
        # reused port would otherwise get connections to an earlier, dead server.
        kombu_pools.reset()

    original = app.conf.broker_url
    reset_pools()
    app.conf.broker_url = url
    try:
        yield
    finally:
        reset_pools()
        app.conf.broker_url = original


@pytest.fixture
def broker() -> Iterator[RedisServer]:
    outbox._broker_down_until = 0.0
    with redis_broker() as server, celery_broker(server.url):
        # Declare the queue first so that what is published to it stays there.
        with _queue() as q:
            q.clear()
        yield server
    outbox._broker_down_until = 0.0


@contextmanager
def _queue() -> Iterator[Any]:
    from somaagent.celery import app

    with app.connection_for_read() as conn:
        queue = kombu.Queue(QUEUE, kombu.Exchange(QUEUE), routing_key=QUEUE)
        with conn.SimpleQueue(queue) as q:
            yield q


def published_payloads() -> list[dict[str, Any]]:
    """Drain the test queue: the kwargs of each task message, in order (publishing is synchronous)."""
    out: list[dict[str, Any]] = []
    with _queue() as q:
        while True:
            try:
                message = q.get_nowait()
            except q.Empty:
                return out
            assert message.headers["task"] == TASK
            out.append(message.payload[1])
            message.ack()


def _row(n: int, *, age: float = 10.0, **fields: Any) -> OutboxMessage:
    return OutboxMessage.objects.create(
        topic=TOPIC,
        payload={"n": n},
        dedupe_key=f"test:{n}",
        created_at=timezone.now() - timedelta(seconds=age),
        **fields,
    )


def test_enqueue_publishes_right_after_commit(broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        message = outbox_enqueue(topic=TOPIC, payload={"n": 1}, dedupe_key="fast:1")
        assert message is not None
        assert published_payloads() == [], "nothing leaves before the transaction commits"
    assert len(callbacks) == 1
    message.refresh_from_db()
    assert message.published_at is not None
    assert published_payloads() == [{"n": 1}]


def test_a_rolled_back_transaction_publishes_nothing(broker, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        outbox_enqueue(topic=TOPIC, payload={"n": 1}, dedupe_key="rollback:1")
        raise RuntimeError("the business transaction fails")
    assert callbacks == []
    assert not OutboxMessage.objects.filter(dedupe_key="rollback:1").exists()
    assert published_payloads() == []


def test_enqueue_dedupes_and_rejects_unknown_topics(broker):
    with transaction.atomic():
        assert outbox_enqueue(topic=TOPIC, payload={"n": 1}, dedupe_key="dup:1") is not None
        assert outbox_enqueue(topic=TOPIC, payload={"n": 2}, dedupe_key="dup:1") is None
        assert OutboxMessage.objects.filter(dedupe_key="dup:1").count() == 1
        with pytest.raises(ValueError):
            outbox_enqueue(topic="no.such.topic", payload={}, dedupe_key="x")


def test_fast_path_with_the_broker_down_leaves_the_row_for_the_sweep(broker):
    row = _row(1)
    broker.stop()
    assert outbox_publish_now(message_id=row.pk) is False
    row.refresh_from_db()
    assert row.published_at is None and "onnect" in row.last_error
    # The breaker is open: the next fast path does not even try (the sweep will).
    other = _row(2)
    assert outbox_publish_now(message_id=other.pk) is False
    other.refresh_from_db()
    assert other.last_error == ""
    broker.start()
    outbox._broker_down_until = 0.0
    assert outbox_sweep()["published"] == 2
    assert sorted(p["n"] for p in published_payloads()) == [1, 2]


def test_sweep_publishes_due_rows_in_order_and_leaves_the_rest(broker, settings):
    settings.SOMA = dataclasses.replace(settings.SOMA, outbox_sweep_min_age_seconds=60)
    due = [_row(i, age=120) for i in range(3)]
    too_young = _row(10, age=0)  # the fast path may still be publishing it
    not_due = _row(11, next_attempt_at=timezone.now() + timedelta(minutes=5))
    already = _row(12, published_at=timezone.now())

    outbox_sweep()

    assert published_payloads() == [{"n": 0}, {"n": 1}, {"n": 2}]
    for row in due:
        row.refresh_from_db()
        assert row.published_at is not None and row.attempts == 1
    for row in (too_young, not_due):
        row.refresh_from_db()
        assert row.published_at is None and row.attempts == 0
    already.refresh_from_db()
    assert already.attempts == 0
    outbox_sweep()
    assert published_payloads() == [], "a published row is never published again by the sweep"


def test_sweep_stops_at_the_first_broker_failure_and_backs_off(broker):
    rows = [_row(i) for i in range(3)]
    broker.stop()
    before = timezone.now()

    counts = outbox_sweep()

    assert counts["failed"] == 1 and counts["published"] == 0
    first, *rest = (OutboxMessage.objects.get(pk=r.pk) for r in rows)
    assert first.attempts == 1 and first.published_at is None and first.last_error
    # first failure: 1 s, jittered down to half
    assert before + timedelta(seconds=0.5) <= first.next_attempt_at <= timezone.now() + timedelta(seconds=1)
    for row in rest:
        assert row.attempts == 0 and row.last_error == "", "the sweep went on against a dead broker"

    broker.start()
    swept_at = timezone.now()
    outbox_sweep()
    published = [p["n"] for p in published_payloads()]
    first.refresh_from_db()
    if first.published_at is None:  # still backing off when the sweep ran
        assert published == [1, 2] and first.next_attempt_at > swept_at
    else:
        assert published == [0, 1, 2]


@pytest.mark.parametrize(
    ("attempts", "low", "high"), [(1, 0.5, 1), (2, 1, 2), (3, 2, 4), (7, 30, 60), (12, 30, 60)]
)
def test_backoff_doubles_with_jitter_up_to_a_minute(attempts, low, high):
    delays = [outbox._backoff(attempts).total_seconds() for _ in range(200)]
    assert all(low <= d <= high for d in delays)
    assert max(delays) - min(delays) > (high - low) / 10, "no jitter"


def test_a_row_older_than_the_max_age_moves_to_the_dead_letters(broker):
    max_age = settings.SOMA.outbox_max_age_seconds
    old = _row(1, age=max_age + 5, attempts=9, last_error="earlier failure")
    young = _row(2)
    broker.stop()

    counts = outbox_sweep()

    assert counts["dead"] == 1 and counts["failed"] == 1
    assert not OutboxMessage.objects.filter(pk=old.pk).exists()
    dead = DeadLetter.objects.get(topic=TOPIC)
    assert dead.event == {"outbox_id": old.pk, "payload": {"n": 1}, "dedupe_key": "test:1"}
    assert dead.attempts == 10 and "onnect" in dead.error and dead.replayed_at is None
    young.refresh_from_db()
    assert young.attempts == 1 and young.published_at is None


def test_an_old_row_is_still_published_when_the_broker_answers(broker):
    _row(1, age=settings.SOMA.outbox_max_age_seconds + 5)
    outbox_sweep()
    assert published_payloads() == [{"n": 1}]
    assert not DeadLetter.objects.exists()


def test_replaying_a_dead_letter_publishes_it_again(broker, django_capture_on_commit_callbacks):
    dead = DeadLetter.objects.create(
        topic=TOPIC, event={"outbox_id": 1, "payload": {"n": 7}, "dedupe_key": "test:7"}, error="x"
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert dead_letter_replay(dead_letter=dead) is True
    dead.refresh_from_db()
    assert dead.replayed_at is not None
    assert published_payloads() == [{"n": 7}]
    row = OutboxMessage.objects.get(topic=TOPIC, payload={"n": 7})
    assert row.published_at is not None

    foreign = DeadLetter.objects.create(topic="memory.write", event={"something": "else"})
    assert dead_letter_replay(dead_letter=foreign) is False
    foreign.refresh_from_db()
    assert foreign.replayed_at is None
