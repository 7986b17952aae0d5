"""Documents stuck in ``processing`` (their worker killed mid-parse): housekeeping queues each
again exactly once after SOMA_DOCUMENTS_STUCK_SECONDS, or fails it after the last attempt; a
document still moving is left alone; and a real worker's housekeeping brings one to ready."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from documents import conf
from documents.models import Document
from documents.services.collections import collection_create
from documents.services.ingest import MAX_ATTEMPTS, document_ingest, stuck_documents_sweep
from somaagent import housekeeping
from somaagent.celery import app
from somaagent.models import OutboxMessage
from tests.documents.helpers import new_tenant
from tests.live import wait_until


def left_processing(*, attempts: int = 1, idle: timedelta = timedelta(hours=1), tenant=None) -> Document:
    """A document as a killed worker leaves it: processing, not moving since ``idle`` ago (made
    directly, so no outbox row of its upload can ingest it first)."""
    collection = collection_create(tenant=tenant or new_tenant(), name="Handbook")
    content = b"# Notes\n\nThe depot opens at seven."
    return Document.objects.create(
        tenant=collection.tenant,
        collection=collection,
        filename="notes.md",
        content_type="text/markdown",
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
        content=content,
        status="processing",
        attempts=attempts,
        progress=60,
        updated_at=timezone.now() - idle,
    )


def requeued(document: Document) -> list[str]:
    return list(
        OutboxMessage.objects.filter(dedupe_key__startswith=f"ingest:{document.pk}:").values_list(
            "dedupe_key", flat=True
        )
    )


@pytest.mark.django_db
def test_a_stuck_document_is_queued_again_exactly_once_and_then_ingested():
    stuck = left_processing(attempts=1)
    moving = left_processing(attempts=1, idle=timedelta(seconds=5))
    assert document_ingest(document_id=str(moving.pk)) == "skipped"  # a redelivery: it may be alive
    assert "documents_stuck" in housekeeping.PRUNERS  # registered by DocumentsConfig.ready()
    assert housekeeping.housekeeping_run()["documents_stuck"] >= 1
    assert stuck_documents_sweep() == 0  # a second run (another worker) finds nothing to do
    stuck.refresh_from_db()
    moving.refresh_from_db()
    assert (stuck.status, stuck.progress) == ("queued", 0)
    assert requeued(stuck) == [f"ingest:{stuck.pk}:after:1"]
    assert moving.status == "processing" and requeued(moving) == []
    assert document_ingest(document_id=str(stuck.pk)) == "ready"
    stuck.refresh_from_db()
    assert (stuck.status, stuck.attempts) == ("ready", 2)


@pytest.mark.django_db
def test_after_the_last_attempt_a_stuck_document_fails_with_the_reason():
    stuck = left_processing(attempts=MAX_ATTEMPTS)
    assert stuck_documents_sweep() == 1
    stuck.refresh_from_db()
    assert stuck.status == "failed"
    assert stuck.reason == f"Ingestion stopped {MAX_ATTEMPTS} times before it finished."
    assert requeued(stuck) == []
    assert stuck_documents_sweep() == 0


@pytest.mark.django_db
def test_the_timeout_is_a_setting(monkeypatch):
    stuck = left_processing(attempts=1, idle=timedelta(seconds=90))
    assert stuck_documents_sweep() == 0  # 90 s is within the default 660 s
    monkeypatch.setenv("SOMA_DOCUMENTS_STUCK_SECONDS", "60")
    conf.documents_settings.cache_clear()
    try:
        assert stuck_documents_sweep() == 1
        assert requeued(stuck) == [f"ingest:{stuck.pk}:after:1"]
    finally:
        conf.documents_settings.cache_clear()


@pytest.mark.integration
def test_a_real_workers_housekeeping_brings_a_stuck_document_to_ready(live_system, tenant_key):
    stuck = left_processing(attempts=1, tenant=tenant_key.tenant)
    app.send_task("soma.housekeeping")

    def ready() -> bool:
        return Document.objects.filter(pk=stuck.pk, status="ready").exists()

    wait_until(ready, timeout=60, interval=0.2, what="the stuck document to be ingested again")
    assert requeued(stuck) == [f"ingest:{stuck.pk}:after:1"]
