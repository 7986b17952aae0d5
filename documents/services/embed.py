"""Vectors for a document's chunks: while it is ingested, and again later (``documents_embed``).

Texts go to the embeddings port in batches of ``SOMA_EMBEDDINGS_BATCH_SIZE``, each batch
bounded by ``SOMA_EMBEDDINGS_TIMEOUT`` (its retries included) and the whole document by
``EMBED_BUDGET_SECONDS``, so the ingestion task ends well inside its time limit.

Fail-visible, never fail-closed: when the service fails, the document still ends
``ready`` (it is found by full text), its ``embedding_status`` is ``failed`` with the
reason a person can read, and a warning is logged. ``manage.py documents_embed``
embeds such documents (or all of them, after a change of model) again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from documents.conf import documents_settings
from documents.embeddings import EmbeddingError, embedder
from documents.models import Chunk, Document
from documents.vectors import to_bytes

log = logging.getLogger(__name__)

EMBED_BUDGET_SECONDS = 300.0


@dataclass(frozen=True)
class Embedded:
    status: str  # Document.Embedding
    vectors: list[bytes] | None = None  # one per text, stored form; None unless ready
    reason: str = ""
    model: str = ""


def embedding_text(*, heading: str, text: str) -> str:
    """What is embedded for a chunk: its section heading gives the passage its context."""
    return f"{heading}\n{text}" if heading else text


def embed_texts(texts: Sequence[str], *, progress: Callable[[float], None] | None = None) -> Embedded:
    """Vectors for ``texts`` with the configured endpoint; ``off`` without one, ``failed`` (and
    logged) when it fails. ``progress`` is told the fraction done after each batch."""
    port = embedder()
    if port is None:
        return Embedded(status=Document.Embedding.OFF)
    cfg = documents_settings().embeddings
    deadline = time.monotonic() + EMBED_BUDGET_SECONDS
    vectors: list[bytes] = []
    try:
        for start in range(0, len(texts), cfg.batch_size):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EmbeddingError(f"Embedding took longer than {EMBED_BUDGET_SECONDS:g} s.")
            batch = texts[start : start + cfg.batch_size]
            vectors.extend(to_bytes(v) for v in port.embed(batch, timeout=min(cfg.timeout, remaining)))
            if progress is not None:
                progress(len(vectors) / len(texts))
    except EmbeddingError as exc:
        log.warning(
            "embedding failed; the document is searched by full text only",
            extra={"error": str(exc), "texts": len(texts), "done": len(vectors)},
        )
        return Embedded(status=Document.Embedding.FAILED, reason=str(exc)[:500], model=port.model)
    return Embedded(status=Document.Embedding.READY, vectors=vectors, model=port.model)


def document_embed(*, document_id: uuid.UUID) -> str:
    """Embed a ready document's chunks again (after a failure or a change of model); returns
    its embedding status. The chunks keep their rows; only their vectors change."""
    document = Document.objects.defer("content").filter(pk=document_id, status=Document.Status.READY).first()
    if document is None:
        return "skipped"
    chunks = list(Chunk.objects.filter(document_id=document.pk).order_by("ordinal").defer("embedding"))
    done = embed_texts([embedding_text(heading=c.heading, text=c.text) for c in chunks])
    with transaction.atomic():
        if done.vectors is not None:
            for chunk, vector in zip(chunks, done.vectors, strict=True):
                chunk.embedding = vector
            Chunk.objects.bulk_update(chunks, ["embedding"], batch_size=500)
        Document.objects.filter(pk=document.pk).update(
            embedding_status=done.status,
            embedding_reason=done.reason,
            embedding_model=done.model if done.vectors is not None else document.embedding_model,
            updated_at=timezone.now(),
        )
    return done.status
