"""Ranked search over document chunks: full text, and hybrid when embeddings are configured.

Full text, per database, as memory/search.py does it. PostgreSQL: a stored
``search_vector`` column (``to_tsvector('english', heading || text)``) with a GIN
index, ranked by ``ts_rank``. SQLite: an FTS5 table over heading and text
(``porter unicode61``), kept in step by triggers, ranked by BM25. The query terms, the
stop words and the time bound are memory's (``query_terms``, ``time_bound``).

Hybrid (``SOMA_EMBEDDINGS_URL`` set): the query is embedded too, the chunks in scope
nearest to it are found (documents/vectors.py), and the two rankings are fused by
reciprocal rank fusion: a chunk's score is the sum of ``1 / (60 + rank)`` over the
lists it is in. If the query cannot be embedded or the vector pass runs out of time,
the search goes on by full text alone and says so in the log (a warning): a broken
embeddings service costs ranking quality, never an answer.
"""

from __future__ import annotations

import logging
import time
import uuid
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.db import DatabaseError, connection

from documents.conf import documents_settings
from documents.embeddings import EmbeddingError, EmbeddingsPort, embedder
from documents.models import Chunk
from documents.vectors import vector_search
from memory.search import SearchTimeout, query_terms, time_bound

log = logging.getLogger(__name__)

RRF_K = 60  # the constant of Cormack et al.'s reciprocal rank fusion
CANDIDATES = 4  # each ranking contributes top_k * CANDIDATES chunks to the fusion (at least 20)
QUERY_EMBED_SHARE = 0.5  # of the search's time bound, at most, for embedding the query


@dataclass(frozen=True)
class ChunkHit:
    chunk_id: int
    document_id: uuid.UUID
    collection_id: uuid.UUID
    filename: str
    ordinal: int
    heading: str
    page: int | None
    text: str
    score: float


COLUMNS = "c.id, c.document_id, c.collection_id, d.filename, c.ordinal, c.heading, c.page, c.text"
POSTGRES_SQL = (
    f"SELECT {COLUMNS}, ts_rank(c.search_vector, q) AS score "
    "FROM document_chunks c JOIN documents d ON d.id = c.document_id, to_tsquery('english', %s) q "
    "WHERE c.tenant_id = %s AND c.collection_id = ANY(%s) AND c.search_vector @@ q "
    "ORDER BY score DESC, c.id LIMIT %s"
)
BY_ID_SQL = (
    f"SELECT {COLUMNS} FROM document_chunks c JOIN documents d ON d.id = c.document_id "
    "WHERE c.tenant_id = %s AND c.id IN ({ids})"
)
SQLITE_SQL = (
    f"SELECT {COLUMNS}, -bm25(document_chunks_fts) AS score FROM document_chunks_fts "
    "JOIN document_chunks c ON c.id = document_chunks_fts.rowid JOIN documents d ON d.id = c.document_id "
    "WHERE document_chunks_fts MATCH %s AND c.tenant_id = %s AND c.collection_id IN ({ids}) "
    "ORDER BY score DESC, c.id LIMIT %s"
)


def chunk_search(
    *, tenant_id: uuid.UUID, collection_ids: Sequence[uuid.UUID], text: str, top_k: int, timeout: float
) -> list[ChunkHit]:
    """The ``top_k`` chunks of these collections most relevant to ``text``, best first: by full
    text, fused with the nearest vectors when embeddings are configured."""
    if not collection_ids or top_k <= 0:
        return []
    port = embedder()
    if port is None:
        return fulltext_search(
            tenant_id=tenant_id, collection_ids=collection_ids, text=text, top_k=top_k, timeout=timeout
        )
    deadline = time.monotonic() + timeout
    query = query_vector(port, text, timeout=timeout * QUERY_EMBED_SHARE)
    candidates = max(top_k * CANDIDATES, 20)
    fulltext = fulltext_search(
        tenant_id=tenant_id,
        collection_ids=collection_ids,
        text=text,
        top_k=candidates,
        timeout=max(0.1, deadline - time.monotonic()),
    )
    if query is None:
        return fulltext[:top_k]
    try:
        nearest = vector_search(
            tenant_id=tenant_id,
            collection_ids=collection_ids,
            query=query,
            model=port.model,
            top_k=candidates,
            min_similarity=documents_settings().embeddings.min_similarity,
            timeout=max(0.1, deadline - time.monotonic()),
        )
    except (SearchTimeout, DatabaseError) as exc:
        log.warning(
            "document vector search failed; ranking by full text only", extra={"error": str(exc)[:300]}
        )
        return fulltext[:top_k]
    return fuse(fulltext, nearest, tenant_id=tenant_id, top_k=top_k)


def query_vector(port: EmbeddingsPort, text: str, *, timeout: float) -> array | None:
    """The query's vector, or None (logged) when the embeddings service fails: full text then."""
    if not text.strip():
        return None
    try:
        return port.embed([text], timeout=timeout)[0]
    except EmbeddingError as exc:
        log.warning("query embedding failed; searching by full text only", extra={"error": str(exc)})
        return None


def fuse(
    fulltext: list[ChunkHit], nearest: list[tuple[int, float]], *, tenant_id: uuid.UUID, top_k: int
) -> list[ChunkHit]:
    """Reciprocal rank fusion of the two rankings; a hit's ``score`` becomes its fused score."""
    scores: dict[int, float] = {}
    for rank, hit in enumerate(fulltext, start=1):
        scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + 1.0 / (RRF_K + rank)
    for rank, (chunk_id, _) in enumerate(nearest, start=1):
        scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
    best = sorted(scores, key=lambda cid: (-scores[cid], cid))[:top_k]
    known = {hit.chunk_id: hit for hit in fulltext}
    missing = [cid for cid in best if cid not in known]
    if missing:
        known.update({hit.chunk_id: hit for hit in chunks_by_id(tenant_id=tenant_id, chunk_ids=missing)})
    return [replace(known[cid], score=scores[cid]) for cid in best if cid in known]


def chunks_by_id(*, tenant_id: uuid.UUID, chunk_ids: Sequence[int]) -> list[ChunkHit]:
    tenant = Chunk._meta.get_field("tenant").get_db_prep_value(tenant_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(BY_ID_SQL.format(ids=", ".join(["%s"] * len(chunk_ids))), [tenant, *chunk_ids])
        return [_hit(row, score=0.0) for row in cursor.fetchall()]


def fulltext_search(
    *, tenant_id: uuid.UUID, collection_ids: Sequence[uuid.UUID], text: str, top_k: int, timeout: float
) -> list[ChunkHit]:
    """The ``top_k`` chunks of these collections whose words best match ``text``, best first."""
    terms = query_terms(text)
    if not terms or not collection_ids or top_k <= 0:
        return []
    field = Chunk._meta.get_field("collection")
    ids = [field.get_db_prep_value(cid, connection) for cid in collection_ids]
    tenant = Chunk._meta.get_field("tenant").get_db_prep_value(tenant_id, connection)
    with time_bound(timeout, what="document search"), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(POSTGRES_SQL, [" | ".join(terms), tenant, ids, top_k])
        else:
            match = " OR ".join(f'"{term}"' for term in terms)
            sql = SQLITE_SQL.format(ids=", ".join(["%s"] * len(ids)))
            cursor.execute(sql, [match, tenant, *ids, top_k])
        rows = cursor.fetchall()
    return [_hit(row, score=float(row[8])) for row in rows]


def _hit(row: Sequence[Any], *, score: float) -> ChunkHit:
    return ChunkHit(
        chunk_id=row[0],
        document_id=uuid.UUID(str(row[1])),
        collection_id=uuid.UUID(str(row[2])),
        filename=row[3],
        ordinal=row[4],
        heading=row[5],
        page=row[6],
        text=row[7],
        score=score,
    )
