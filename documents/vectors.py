"""Chunk vectors: stored as float32 bytes in the chunk's row, ranked exactly in this process.

Not pgvector and not sqlite-vec: the first has no package for the PostgreSQL of the
supported Debian release here, the second needs ``sqlite3`` built with
``enable_load_extension``, which the Python here is not. So a vector is a plain
column that both databases hold (``document_chunks.embedding``, little-endian
float32 of length 1) and its document says which model made it
(``documents.embedding_model``). A search reads the vectors of every chunk in the
caller's scope (tenant, collections, same model), takes the dot product with the
query's vector in Python and keeps the best. That is exact (no approximate index
to tune or to miss), but its cost grows with the chunks in scope and their
dimensions; bench/documents.py measures it and docs/documents.md says what it means.
"""

from __future__ import annotations

import heapq
import logging
import sys
import time
import uuid
from array import array
from collections.abc import Iterator, Sequence
from operator import mul

from django.db import connection

from documents.models import Chunk
from memory.search import SearchTimeout, time_bound

log = logging.getLogger(__name__)

FETCH = 2000  # rows read at a time (a server-side cursor on PostgreSQL)
VECTOR_SQL = (
    "SELECT c.id, c.embedding FROM document_chunks c JOIN documents d ON d.id = c.document_id "
    "WHERE c.tenant_id = %s AND c.collection_id IN ({ids}) AND d.embedding_model = %s "
    "AND c.embedding IS NOT NULL"
)


def to_bytes(vector: array) -> bytes:
    """The stored form: float32, little-endian whatever the machine."""
    if sys.byteorder == "big":
        vector = array("f", vector)
        vector.byteswap()
    return vector.tobytes()


def from_bytes(blob: bytes | memoryview) -> array:
    vector = array("f")
    vector.frombytes(blob)
    if sys.byteorder == "big":
        vector.byteswap()
    return vector


def vector_search(
    *,
    tenant_id: uuid.UUID,
    collection_ids: Sequence[uuid.UUID],
    query: array,
    model: str,
    top_k: int,
    min_similarity: float,
    timeout: float,
) -> list[tuple[int, float]]:
    """``(chunk id, cosine)`` of the ``top_k`` chunks in scope nearest to ``query`` (at least
    ``min_similarity``), best first. ``SearchTimeout`` past ``timeout`` seconds."""
    if not collection_ids or top_k <= 0 or not query:
        return []
    deadline = time.monotonic() + timeout
    field = Chunk._meta.get_field("collection")
    ids = [field.get_db_prep_value(cid, connection) for cid in collection_ids]
    tenant = Chunk._meta.get_field("tenant").get_db_prep_value(tenant_id, connection)
    sql = VECTOR_SQL.format(ids=", ".join(["%s"] * len(ids)))
    q = query.tolist()
    size = len(q) * 4
    skipped = 0

    def scored(rows: Iterator[tuple[int, bytes]]) -> Iterator[tuple[float, int]]:
        nonlocal skipped
        for chunk_id, blob in rows:
            if len(blob) != size:
                skipped += 1  # made with other dimensions: not comparable
                continue
            similarity = sum(map(mul, q, from_bytes(blob)))
            if similarity >= min_similarity:
                yield similarity, -chunk_id

    with time_bound(timeout, what="document vector search"), connection.chunked_cursor() as cursor:
        cursor.execute(sql, [tenant, *ids, model])

        def rows() -> Iterator[tuple[int, bytes]]:
            while batch := cursor.fetchmany(FETCH):
                if time.monotonic() > deadline:
                    raise SearchTimeout(f"document vector search took longer than {timeout}s")
                yield from batch

        best = heapq.nlargest(top_k, scored(rows()))
    if skipped:
        log.warning(
            "chunk vectors of other dimensions skipped",
            extra={"skipped": skipped, "dimensions": len(q), "model": model},
        )
    return [(-negative_id, similarity) for similarity, negative_id in best]
