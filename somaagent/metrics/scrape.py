"""Gauges computed when ``/metrics`` is scraped, from the database and the broker.

Each source is a function returning metric families; packages register their
own (``register_scrape_source``), e.g. the memory package its write backlog and
replication lag. Results are cached for ``SOMA_METRICS_SCRAPE_CACHE_SECONDS`` so
several scrapers cost one round of queries. A source that fails is reported by
``soma_scrape_source_up{source} 0`` and logged; the others still answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from celery import current_app
from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from somaagent.models import DeadLetter, OutboxMessage

log = logging.getLogger(__name__)

Source = Callable[[], Iterable[Any]]
SOURCES: dict[str, Source] = {}


def register_scrape_source(name: str, source: Source) -> None:
    SOURCES[name] = source


def _age_seconds(oldest: Any) -> float:
    return max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0


def outbox_source() -> Iterable[Any]:
    backlog = GaugeMetricFamily(
        "soma_outbox_backlog", "Outbox rows not yet published to the broker, by topic.", labels=["topic"]
    )
    pending = OutboxMessage.objects.filter(published_at__isnull=True)
    for row in pending.values("topic").annotate(n=Count("id")).order_by():
        backlog.add_metric([row["topic"]], row["n"])
    oldest = pending.aggregate(oldest=Min("created_at"))["oldest"]
    age = GaugeMetricFamily(
        "soma_outbox_oldest_unpublished_age_seconds",
        "Age of the oldest unpublished outbox row (0 when none).",
        value=_age_seconds(oldest),
    )
    dlq = GaugeMetricFamily("soma_dlq_size", "Dead letters not yet replayed, by topic.", labels=["topic"])
    for row in (
        DeadLetter.objects.filter(replayed_at__isnull=True).values("topic").annotate(n=Count("id")).order_by()
    ):
        dlq.add_metric([row["topic"]], row["n"])
    return [backlog, age, dlq]


def queue_source() -> Iterable[Any]:
    from celeryconfig import QUEUES

    gauge = GaugeMetricFamily(
        "soma_queue_depth", "Messages waiting in each broker queue (not yet delivered).", labels=["queue"]
    )
    with current_app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        virtual = conn.transport.driver_type in ("redis", "memory", "sqlalchemy", "filesystem")
        for name in QUEUES:
            gauge.add_metric([name], _queue_size(conn, name, passive=not virtual))
    return [gauge]


def _queue_size(conn: Any, name: str, *, passive: bool) -> int:
    """Redis: LLEN of the queue's lists (with kombu's key prefix); AMQP: a passive declare."""
    channel = conn.channel()
    try:
        _, count, _ = channel.queue_declare(queue=name, passive=passive)
        return int(count)
    except conn.channel_errors:
        return 0  # AMQP: the queue does not exist yet, so nothing waits in it
    finally:
        try:
            channel.close()
        except conn.connection_errors + conn.channel_errors:
            pass


def core_sources_register() -> None:
    """The core's own sources (``SomaAgentConfig.ready``); the apps add theirs."""
    register_scrape_source("outbox", outbox_source)
    register_scrape_source("queues", queue_source)


class ScrapeCollector:
    """The prometheus-client collector that runs every source (cached briefly)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Any]] | None = None

    def collect(self) -> Iterable[Any]:
        ttl = settings.SOMA_OPS.metrics_scrape_cache_seconds
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= ttl:
                self._cached = (now, self._run_sources())
            return list(self._cached[1])

    def _run_sources(self) -> list[Any]:
        from django.db import close_old_connections

        close_old_connections()
        families: list[Any] = []
        up = GaugeMetricFamily(
            "soma_scrape_source_up", "1 when a scrape-time source answered.", labels=["source"]
        )
        for name, source in SOURCES.items():
            try:
                families.extend(source())
                up.add_metric([name], 1)
            except Exception:  # one broken source must not hide the others
                log.warning("metrics source failed", extra={"source": name}, exc_info=True)
                up.add_metric([name], 0)
        families.append(up)
        return families
