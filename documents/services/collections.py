"""Creating and deleting collections and documents (the upload; parsing is ingest.py)."""

from __future__ import annotations

import hashlib
import logging
import uuid
from typing import Any

from django.db import IntegrityError, transaction

from documents.kinds import ACCEPTED, classify
from documents.models import Collection, Document
from documents.services.ingest import ingest_enqueue
from somaagent.errors import NotFound, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from somaagent.models import Persona, Tenant

log = logging.getLogger(__name__)


def collection_create(
    *,
    tenant: Tenant,
    name: str,
    description: str = "",
    owner: Any = None,
    session_id: uuid.UUID | None = None,
    persona_ids: list[uuid.UUID] | None = None,
) -> Collection:
    """A shared collection (no owner), a member's private one, or a chat's files (``session_id``:
    one per chat; asking again returns the existing one)."""
    personas = list(Persona.objects.filter(tenant=tenant, pk__in=persona_ids or []))
    if len(personas) != len(set(persona_ids or [])):
        raise NotFound("No such persona.", details={"persona_ids": "unknown"})
    if session_id is not None:
        existing = Collection.objects.filter(tenant=tenant, session_id=session_id).first()
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            collection = Collection.objects.create(
                tenant=tenant, name=name, description=description, owner=owner, session_id=session_id
            )
            collection.personas.set(personas)
    except IntegrityError:  # a concurrent request made this chat's collection first
        return Collection.objects.get(tenant=tenant, session_id=session_id)
    return collection


def collection_delete(*, collection: Collection) -> None:
    """The collection, its documents and every chunk of them."""
    collection.delete()


def chat_files_delete(*, session_id: uuid.UUID) -> None:
    """A deleted chat's own files go with it (its collection, documents and chunks)."""
    Collection.objects.filter(session_id=session_id).delete()


def document_upload(
    *, collection: Collection, filename: str, declared_type: str | None, content: bytes, max_bytes: int
) -> tuple[Document, bool]:
    """Store one file and queue its ingestion; ``(document, created)``. The same bytes uploaded
    again into the collection return the document they made the first time (no work twice)."""
    if len(content) > max_bytes:
        raise PayloadTooLarge(
            f"The file is larger than {max_bytes} bytes.",
            details={"max_bytes": max_bytes, "size": len(content)},
        )
    if not content:
        raise ValidationFailed("The file is empty.", details={"file": "empty"})
    name = clean_filename(filename)
    found = classify(content=content, declared=declared_type, filename=name)
    if isinstance(found, str):
        raise UnsupportedMediaType(found, details={"accepted": ACCEPTED})
    content_type, _ = found
    sha = hashlib.sha256(content).hexdigest()
    existing = Document.objects.filter(collection=collection, sha256=sha).defer("content").first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            document = Document.objects.create(
                tenant_id=collection.tenant_id,
                collection=collection,
                filename=name,
                content_type=content_type,
                sha256=sha,
                size=len(content),
                content=content,
            )
            ingest_enqueue(document_id=document.pk)
    except IntegrityError:  # the same file, uploaded at the same moment
        return Document.objects.defer("content").get(collection=collection, sha256=sha), False
    return document, True


def document_delete(*, document: Document) -> None:
    """The document and all its chunks (the search index follows the rows)."""
    document.delete()


def clean_filename(name: str) -> str:
    """The last path component, printable, without characters that break headers or shells."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable() and ch not in '"<>:|?*;').strip(" .")
    return base[:255] or "upload"
