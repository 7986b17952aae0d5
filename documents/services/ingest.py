"""Ingestion in the background: parse in a bounded subprocess, chunk, index.

``document_upload`` stores the file and an outbox row in one transaction; the
outbox publishes ``documents.ingest`` after commit (and the sweep, if that was
missed). ``document_ingest`` is idempotent: a document already ``ready`` or
``failed`` is left alone, one being processed by a live attempt is left to it,
and chunks are replaced (never added to) in the transaction that marks the
document ready, so a retried or duplicated task never indexes anything twice.
"""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from documents.chunking import chunk_segments
from documents.conf import documents_settings
from documents.extract.run import Extracted, extract
from documents.kinds import classify
from documents.models import Chunk, Document
from somaagent.outbox import outbox_enqueue

log = logging.getLogger(__name__)

INGEST_TOPIC = "documents.ingest"
INGEST_TASK = "documents.ingest"
MAX_ATTEMPTS = 3
BATCH = 500


def ingest_enqueue(*, document_id: uuid.UUID) -> None:
    """Queue the document's ingestion with the caller's transaction (published after commit)."""
    outbox_enqueue(
        topic=INGEST_TOPIC, payload={"document_id": str(document_id)}, dedupe_key=f"ingest:{document_id}"
    )


def _claim(document_id: str) -> Document | None:
    """Mark the document processing (one attempt more) unless someone else holds it or it is done."""
    stale = timezone.now() - timedelta(seconds=documents_settings().parse.wall_seconds + 60)
    with transaction.atomic():
        document = Document.objects.select_for_update().filter(pk=document_id).first()
        if document is None or document.status in (Document.Status.READY, Document.Status.FAILED):
            return None
        if document.status == Document.Status.PROCESSING and document.updated_at > stale:
            return None  # a live attempt is on it (a duplicate delivery)
        if document.attempts >= MAX_ATTEMPTS:
            _fail(document, f"Ingestion stopped {document.attempts} times before it finished.")
            return None
        document.status = Document.Status.PROCESSING
        document.attempts += 1
        document.progress = 10
        document.updated_at = timezone.now()
        document.save(update_fields=["status", "attempts", "progress", "updated_at"])
        return document


def _fail(document: Document, reason: str) -> None:
    Document.objects.filter(pk=document.pk).update(
        status=Document.Status.FAILED, reason=reason[:500], progress=100, updated_at=timezone.now()
    )
    log.warning("document ingestion failed", extra={"document_id": str(document.pk), "reason": reason})


def _parse(document: Document) -> Extracted:
    found = classify(
        content=bytes(document.content), declared=document.content_type, filename=document.filename
    )
    if isinstance(found, str):
        return Extracted(error=found)
    _, kind = found
    with tempfile.TemporaryDirectory(prefix="soma-doc-") as workdir:
        path = os.path.join(workdir, "upload")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(bytes(document.content))
        document.content = b""  # not kept in the worker's memory while the parser runs
        return extract(path=path, kind=kind, limits=documents_settings().parse)


def document_ingest(*, document_id: str) -> str:
    """Parse, chunk and index one document; returns its final status (or why nothing was done)."""
    document = _claim(document_id)
    if document is None:
        return "skipped"
    extracted = _parse(document)
    if extracted.error:
        _fail(document, extracted.error)
        return Document.Status.FAILED
    Document.objects.filter(pk=document.pk).update(progress=60, updated_at=timezone.now())
    pieces = chunk_segments(extracted.segments)
    if not pieces:
        _fail(document, "The file contains no text to index.")
        return Document.Status.FAILED
    with transaction.atomic():
        if not Document.objects.filter(pk=document.pk, status=Document.Status.PROCESSING).exists():
            return "skipped"  # deleted while it was parsed
        Chunk.objects.filter(document_id=document.pk).delete()
        rows = [
            Chunk(
                document_id=document.pk,
                tenant_id=document.tenant_id,
                collection_id=document.collection_id,
                ordinal=index,
                heading=piece.heading[:300],
                page=piece.page,
                text=piece.text,
            )
            for index, piece in enumerate(pieces)
        ]
        Chunk.objects.bulk_create(rows, batch_size=BATCH)
        Document.objects.filter(pk=document.pk).update(
            status=Document.Status.READY,
            reason="",
            pages=extracted.pages,
            chunks_count=len(rows),
            progress=100,
            updated_at=timezone.now(),
        )
    log.info(
        "document ingested",
        extra={"document_id": str(document.pk), "chunks": len(pieces), "parse_ms": extracted.duration_ms},
    )
    return Document.Status.READY
