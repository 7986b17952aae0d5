"""Embedded memory adapter: the memory store lives in our own database (``memory_items``).

Recall is relevance-ranked full-text search (``memory.search``). Remembering
the same key twice stores it once. Nothing here leaves the process, so the only
failures are database errors, reported as ``MemoryUnavailable`` (retryable).
"""

from __future__ import annotations

import uuid

from django.db import DatabaseError

from memory.models import MemoryItem
from memory.port import Forget, MemoryHit, MemoryUnavailable, RecallQuery, Remember
from memory.search import SearchTimeout, search_items


class EmbeddedMemory:
    name = "embedded"
    # Its reads run on the caller's database connection: a caller may put them in its transaction.
    shares_database = True

    def remember(self, item: Remember) -> None:
        session_id = item.value.get("session_id")
        try:
            MemoryItem.objects.bulk_create(
                [
                    MemoryItem(
                        key=item.key,
                        tenant_id=uuid.UUID(item.tenant),
                        namespace=item.namespace,
                        session_id=uuid.UUID(str(session_id)) if session_id else None,
                        text=str(item.value.get("text", "")),
                        payload=item.value,
                        tags=list(item.tags),
                    )
                ],
                ignore_conflicts=True,
            )
        except DatabaseError as exc:
            raise MemoryUnavailable(f"embedded memory store failed: {exc!r}") from exc

    def recall(self, query: RecallQuery) -> list[MemoryHit]:
        try:
            found = search_items(
                tenant_id=uuid.UUID(query.tenant),
                namespace=query.namespace,
                text=query.query,
                top_k=query.top_k,
                timeout=query.timeout,
            )
        except (DatabaseError, SearchTimeout) as exc:
            raise MemoryUnavailable(f"embedded memory search failed: {exc!r}") from exc
        return [MemoryHit(key=item.key, score=score, payload=item.payload) for item, score in found]

    def forget(self, request: Forget) -> int:
        try:
            deleted, _ = MemoryItem.objects.filter(
                tenant_id=uuid.UUID(request.tenant),
                namespace=request.namespace,
                session_id=uuid.UUID(request.session_id),
            ).delete()
        except DatabaseError as exc:
            raise MemoryUnavailable(f"embedded memory store failed: {exc!r}") from exc
        return deleted
