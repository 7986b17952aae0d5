"""Chunk vectors: stored as float32 bytes in the chunk's row, ranked exactly in this process.

Not pgvector and not sqlite-vec: the first has no package for the PostgreSQL of the
supported Debian release here, the second needs ``sqlite3`` built with
``enable_load_extension``, which the Python here is not. So a vector is a plain
column that both databases hold (``document_chunks.embedding``, little-endian
float32 of length 1) and its document says which model made it
(``documents.embedding_model``). A search takes the dot product of the query's
vector with the vector of every chunk in the caller's scope (tenant, collections,
same model) as one matrix product (numpy) and keeps the best: exact (no approximate index to tune or to
miss), at a cost linear in the chunks in scope and their dimensions
(bench/documents.py measures it; docs/documents.md says what it means).

Reading those vectors from the database costs more than the arithmetic, so each
process keeps a collection's vectors, packed, while they are current
(``SOMA_EMBEDDINGS_CACHE_MB`` in all, least recently used first out). Current means:
one small query on ``documents`` per search gives each collection a stamp (its ready
documents of this model: how many, their chunks, their latest ``updated_at``), and
ingesting, deleting or re-embedding a document changes it; a changed stamp reads the
collection again.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import uuid
from array import array
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import connection

from documents.conf import documents_settings
from documents.models import Chunk
from memory.search import SearchTimeout, time_bound

if TYPE_CHECKING:
    import numpy as np

# numpy is imported by the functions that use it, on the process's first vector search: it is
# 22 MB resident and ~0.2 s of import that a web process or worker which never ranks vectors
# (every deployment without SOMA_EMBEDDINGS_URL) does not pay. tests/somaagent/test_lazy_imports.py.

log = logging.getLogger(__name__)

FETCH = 2000  # rows read at a time (a server-side cursor on PostgreSQL)
READ_GRACE = 4.0  # reading a collection's vectors may take this many times the search's bound
STAMP_SQL = (
    "SELECT collection_id, COUNT(*), SUM(chunks_count), MAX(updated_at) FROM documents "
    "WHERE tenant_id = %s AND collection_id IN ({ids}) AND status = 'ready' AND embedding_model = %s "
    "AND embedding_status = 'ready' GROUP BY collection_id"
)
VECTORS_SQL = (
    "SELECT c.id, c.embedding FROM document_chunks c JOIN documents d ON d.id = c.document_id "
    "WHERE c.tenant_id = %s AND c.collection_id = %s AND d.embedding_model = %s AND c.embedding IS NOT NULL"
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


@dataclass(frozen=True)
class Packed:
    """One collection's vectors of one size: ``ids[i]`` owns row ``i`` of ``vectors``
    (float32, ``len(ids)`` x ``dimensions``)."""

    stamp: tuple[Any, ...]
    dimensions: int
    ids: np.ndarray  # int64
    vectors: np.ndarray  # float32, one row per chunk
    skipped: int  # vectors of another size (another model behind the same name): not comparable

    @property
    def size(self) -> int:
        return int(self.vectors.nbytes + self.ids.nbytes)


class PackedCache:
    """Packed collections by (tenant, collection, model, dimensions), least recently used out
    first, at most ``limit_bytes`` in all (a larger collection is read every time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[Any, ...], Packed] = OrderedDict()
        self._bytes = 0

    def get(self, key: tuple[Any, ...], stamp: tuple[Any, ...]) -> Packed | None:
        with self._lock:
            found = self._items.get(key)
            if found is None or found.stamp != stamp:
                return None
            self._items.move_to_end(key)
            return found

    def put(self, key: tuple[Any, ...], packed: Packed, *, limit_bytes: int) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            if packed.size > limit_bytes:
                return
            self._items[key] = packed
            self._bytes += packed.size
            while self._bytes > limit_bytes and self._items:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted.size

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


CACHE = PackedCache()


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
    tenant = Chunk._meta.get_field("tenant").get_db_prep_value(tenant_id, connection)
    field = Chunk._meta.get_field("collection")
    import numpy as np

    q = np.asarray(query, dtype=np.float32)
    limit = documents_settings().embeddings.cache_mb * 1024 * 1024
    with time_bound(timeout, what="document vector search"):
        stamps = _stamps(tenant, [field.get_db_prep_value(c, connection) for c in collection_ids], model)
    packs: list[Packed] = []
    for cid, stamp in stamps:
        key = (str(tenant_id), str(cid), model, len(q))
        packed = CACHE.get(key, stamp)
        if packed is None:
            # Reading may take up to READ_GRACE times the search's bound: a collection slower to
            # read than one search may wait would otherwise never be kept. This search may then
            # rank by full text only; the next ones find the vectors in memory.
            grace = timeout * READ_GRACE
            with time_bound(grace, what="reading document vectors"):
                packed = _read(
                    tenant, cid, model, stamp, dimensions=len(q), deadline=time.monotonic() + grace
                )
            CACHE.put(key, packed, limit_bytes=limit)
        packs.append(packed)
    if time.monotonic() > deadline:
        raise SearchTimeout(f"document vector search took longer than {timeout}s")
    best = _best(packs, q, top_k, min_similarity)
    skipped = sum(p.skipped for p in packs)
    if skipped:
        log.warning(
            "chunk vectors of other dimensions skipped",
            extra={"skipped": skipped, "dimensions": len(q), "model": model},
        )
    return best


def _stamps(tenant: Any, ids: list[Any], model: str) -> list[tuple[Any, tuple[Any, ...]]]:
    """Each collection with vectors of ``model``, and what changes when its vectors do."""
    with connection.cursor() as cursor:
        cursor.execute(STAMP_SQL.format(ids=", ".join(["%s"] * len(ids))), [tenant, *ids, model])
        return [(row[0], (int(row[1]), int(row[2] or 0), str(row[3]))) for row in cursor.fetchall()]


def _read(
    tenant: Any, cid: Any, model: str, stamp: tuple[Any, ...], *, dimensions: int, deadline: float
) -> Packed:
    """One collection's vectors of ``dimensions`` from the database, packed."""
    size = dimensions * 4
    ids = array("q")
    vectors = bytearray()
    skipped = 0
    with connection.chunked_cursor() as cursor:
        cursor.execute(VECTORS_SQL, [tenant, cid, model])
        while batch := cursor.fetchmany(FETCH):
            if time.monotonic() > deadline:
                raise SearchTimeout("document vector search ran out of time reading vectors")
            for chunk_id, blob in batch:
                if len(blob) != size:
                    skipped += 1
                    continue
                ids.append(chunk_id)
                vectors += blob
    import numpy as np

    # Stored little-endian float32 ("<f4"); as this machine's floats for the product.
    matrix = np.frombuffer(bytes(vectors), dtype="<f4").astype(np.float32).reshape(len(ids), dimensions)
    return Packed(
        stamp=stamp,
        dimensions=dimensions,
        ids=np.asarray(ids, dtype=np.int64),
        vectors=matrix,
        skipped=skipped,
    )


def _best(packs: list[Packed], q: np.ndarray, top_k: int, min_similarity: float) -> list[tuple[int, float]]:
    """``(chunk id, cosine)`` of the ``top_k`` best vectors at least ``min_similarity``, best first
    (ties: the lower id)."""
    if not packs:
        return []
    import numpy as np

    ids = np.concatenate([p.ids for p in packs])
    similarities = np.concatenate([p.vectors @ q for p in packs])
    keep = similarities >= min_similarity
    ids, similarities = ids[keep], similarities[keep]
    if len(ids) > top_k:
        # The top_k best (and every vector tied with the last of them), then an exact order.
        threshold = np.partition(similarities, len(similarities) - top_k)[len(similarities) - top_k]
        keep = similarities >= threshold
        ids, similarities = ids[keep], similarities[keep]
    order = np.lexsort((ids, -similarities))[:top_k]
    return [(int(ids[i]), float(similarities[i])) for i in order]
