"""Embed ready documents again: those whose embedding failed or is missing, or (``--all``)
every one, after the embeddings model changed. One document at a time, in its own transaction."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from documents.embeddings import embedder
from documents.models import Document
from documents.services.embed import document_embed


class Command(BaseCommand):
    help = "Embed ready documents whose vectors failed, are missing or (--all) were made by another model."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--all", action="store_true", help="every ready document, whatever its vectors")
        parser.add_argument("--tenant", help="only this tenant's documents (its id)")

    def handle(self, *args: Any, **options: Any) -> None:
        port = embedder()
        if port is None:
            raise CommandError("SOMA_EMBEDDINGS_URL is not set: there is nothing to embed with.")
        rows = Document.objects.filter(status=Document.Status.READY)
        if options["tenant"]:
            rows = rows.filter(tenant_id=options["tenant"])
        if not options["all"]:
            rows = rows.filter(~Q(embedding_status=Document.Embedding.READY) | ~Q(embedding_model=port.model))
        counts: dict[str, int] = {}
        for document_id in rows.order_by("created_at").values_list("pk", flat=True):
            status = document_embed(document_id=document_id)
            counts[status] = counts.get(status, 0) + 1
        summary = ", ".join(f"{status}: {n}" for status, n in sorted(counts.items())) or "nothing to do"
        self.stdout.write(f"documents_embed: {summary}")
