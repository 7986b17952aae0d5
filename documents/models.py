"""Document collections the agent can search and cite: collection → document → chunks.

Who sees a collection (``documents.selectors``): a **shared** one (no owner, no
session) every member of its tenant, and its turns when it is bound to none of
the tenant's personas or to the session's persona; a **private** one only its
owner; a **chat's own files** (``session_id``) only that session. Session ids
are plain UUIDs, as in memory: documents never import conversations.

Chunks carry their tenant and collection (copied from the document) so the
search filters one table, and their vector when embeddings are configured
(``documents.vectors``; the document says which model made them and whether
embedding failed). Their full-text index is created per database by
migration 0002 (a GIN index on a stored tsvector on PostgreSQL, an FTS5 table
kept in step by triggers on SQLite), as for ``memory_items``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from somaagent.models import Persona, Tenant, TenantScopedQuerySet


class Collection(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    description = models.CharField(max_length=1000, blank=True, default="")
    personas = models.ManyToManyField(
        Persona, blank=True, related_name="+", help_text="Used in turns of these personas only (none: all)."
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="A member's private collection: theirs alone.",
    )
    session_id = models.UUIDField(null=True, blank=True, db_index=True, help_text="A chat's own files.")
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "document_collections"
        ordering = ["name", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["session_id"],
                condition=Q(session_id__isnull=False),
                name="doccollection_one_per_chat",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def kind(self) -> str:
        if self.session_id is not None:
            return "chat"
        return "private" if self.owner_id is not None else "shared"


class Document(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        PROCESSING = "processing"
        READY = "ready"
        FAILED = "failed"

    class Embedding(models.TextChoices):
        OFF = "off"  # no embeddings endpoint when it was ingested: full-text only
        READY = "ready"  # every chunk has a vector of ``embedding_model``
        FAILED = "failed"  # the endpoint failed (``embedding_reason``): full-text only

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="documents")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    content = models.BinaryField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(max_length=500, blank=True, default="", help_text="Why it failed.")
    pages = models.PositiveIntegerField(default=0)
    chunks_count = models.PositiveIntegerField(default=0)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done.")
    attempts = models.PositiveSmallIntegerField(default=0)
    embedding_status = models.CharField(
        max_length=8, choices=Embedding.choices, default=Embedding.OFF, help_text="Vectors of its chunks."
    )
    embedding_reason = models.CharField(
        max_length=500, blank=True, default="", help_text="Why embedding failed (it is found by full text)."
    )
    embedding_model = models.CharField(max_length=200, blank=True, default="", help_text="Made its vectors.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "documents"
        ordering = ["-created_at"]
        constraints = [
            # Uploading the same bytes twice into one collection does no work twice.
            models.UniqueConstraint(fields=["collection", "sha256"], name="document_once_per_collection"),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "processing", "ready", "failed"]),
                name="document_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(embedding_status__in=["off", "ready", "failed"]),
                name="document_embedding_status_valid",
            ),
        ]
        indexes = [models.Index(fields=["status", "updated_at"], name="document_status_updated")]

    def __str__(self) -> str:
        return self.filename


class Chunk(models.Model):
    id = models.BigAutoField(primary_key=True)
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="+")
    ordinal = models.PositiveIntegerField()
    heading = models.CharField(max_length=300, blank=True, default="")
    page = models.PositiveIntegerField(null=True, blank=True)
    text = models.TextField()
    # float32, little-endian, length 1 (documents/vectors.py); null without embeddings
    embedding = models.BinaryField(null=True, blank=True, editable=False)

    class Meta:
        db_table = "document_chunks"
        ordering = ["document", "ordinal"]
        constraints = [models.UniqueConstraint(fields=["document", "ordinal"], name="chunk_ordinal_unique")]
        indexes = [models.Index(fields=["collection"], name="chunk_collection")]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.ordinal}"
