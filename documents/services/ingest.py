"""Ingestion in the background: parse in a bounded subprocess, chunk, index.

``document_upload`` stores the file and an outbox row in one transaction; the
outbox publishes ``documents.ingest`` after commit (and the sweep, if that was
missed). ``document_ingest`` is idempotent: a document already ``ready`` or
``failed`` is left alone, one being processed by a live attempt is left to it,
and chunks are replaced (never added to) in the transaction that marks the
document ready, so a retried or duplicated task never indexes anything twice.

A worker killed mid-parse leaves its document ``processing``; a redelivered task
leaves it alone while it might still be alive, and ``stuck_documents_sweep``
(housekeeping, registered in ``DocumentsConfig.ready()``) queues it again once it
has not moved for ``SOMA_DOCUMENTS_STUCK_SECONDS``, or fails it after
``MAX_ATTEMPTS`` attempts.
"""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from documents.chunking import chunk_segments
from documents.conf import documents_settings
from documents.extract.run import Extracted, extract
from documents.kinds import classify
from documents.models import Chunk, Document
from documents.services.embed import embed_texts, embedding_text
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


def _stale_before() -> datetime:
    """Processing that has not moved since then has no live attempt (see ``SOMA_DOCUMENTS_STUCK_SECONDS``)."""
    return timezone.now() - timedelta(seconds=documents_settings().stuck_seconds)


def _claim(document_id: str) -> Document | None:
    """Mark the document processing (one attempt more) unless someone else holds it or it is done."""
    with transaction.atomic():
        document = Document.objects.select_for_update().filter(pk=document_id).first()
        if document is None or document.status in (Document.Status.READY, Document.Status.FAILED):
            return None
        if document.status == Document.Status.PROCESSING and document.updated_at > _stale_before():
            return None  # a live attempt is on it (a duplicate delivery)
        if document.attempts >= MAX_ATTEMPTS:
            _fail(document, _stopped(document.attempts))
            return None
        document.status = Document.Status.PROCESSING
        document.attempts += 1
        document.progress = 10
        document.updated_at = timezone.now()
        document.save(update_fields=["status", "attempts", "progress", "updated_at"])
        return document


def _stopped(attempts: int) -> str:
    return f"Ingestion stopped {attempts} times before it finished."


def stuck_documents_sweep(*, batch_size: int = 100) -> int:
    """Documents left ``processing`` by an attempt that died (its worker killed mid-parse) and
    not moving for ``SOMA_DOCUMENTS_STUCK_SECONDS``: each is queued again, once, or failed after
    ``MAX_ATTEMPTS``. Run by housekeeping; safe in several workers at once (a conditional
    update decides who takes a document, and its outbox row has a dedupe key per attempt)."""
    before = _stale_before()
    stuck = Document.objects.filter(status=Document.Status.PROCESSING, updated_at__lt=before)
    taken = 0
    for pk, attempts, seen in stuck.values_list("pk", "attempts", "updated_at")[:batch_size]:
        with transaction.atomic():
            mine = Document.objects.filter(pk=pk, status=Document.Status.PROCESSING, updated_at=seen)
            if attempts >= MAX_ATTEMPTS:
                taken += mine.update(
                    status=Document.Status.FAILED,
                    reason=_stopped(attempts),
                    progress=100,
                    updated_at=timezone.now(),
                )
                continue
            if mine.update(status=Document.Status.QUEUED, progress=0, updated_at=timezone.now()):
                outbox_enqueue(
                    topic=INGEST_TOPIC,
                    payload={"document_id": str(pk)},
                    dedupe_key=f"ingest:{pk}:after:{attempts}",
                )
                taken += 1
    if taken:
        log.warning("documents stuck in processing taken back", extra={"count": taken})
    return taken


def _fail(document: Document, reason: str) -> None:
    Document.objects.filter(pk=document.pk).update(
        status=Document.Status.FAILED, reason=reason[:500], progress=100, updated_at=timezone.now()
    )
    log.warning("document ingestion failed", extra={"document_id": str(document.pk), "reason": reason})


def _progress(document: Document, percent: int) -> None:
    """Progress for the web chat, and a sign of life: the sweep leaves a document that moves alone."""
    Document.objects.filter(pk=document.pk, status=Document.Status.PROCESSING).update(
        progress=percent, updated_at=timezone.now()
    )


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
    _progress(document, 60)
    pieces = chunk_segments(extracted.segments)
    if not pieces:
        _fail(document, "The file contains no text to index.")
        return Document.Status.FAILED
    embedded = embed_texts(
        [embedding_text(heading=piece.heading[:300], text=piece.text) for piece in pieces],
        progress=lambda done: _progress(document, 60 + int(35 * done)),
    )
    vectors: list[bytes | None] = [*embedded.vectors] if embedded.vectors else [None] * len(pieces)
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
                embedding=vector,
            )
            for index, (piece, vector) in enumerate(zip(pieces, vectors, strict=True))
        ]
        Chunk.objects.bulk_create(rows, batch_size=BATCH)
        Document.objects.filter(pk=document.pk).update(
            status=Document.Status.READY,
            reason="",
            pages=extracted.pages,
            chunks_count=len(rows),
            progress=100,
            embedding_status=embedded.status,
            embedding_reason=embedded.reason,
            embedding_model=embedded.model,
            updated_at=timezone.now(),
        )
    log.info(
        "document ingested",
        extra={
            "document_id": str(document.pk),
            "chunks": len(pieces),
            "parse_ms": extracted.duration_ms,
            "embedding": embedded.status,
        },
    )
    return Document.Status.READY
