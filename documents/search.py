"""Ranked full-text search over document chunks, per database, as memory/search.py does it.

PostgreSQL: a stored ``search_vector`` column (``to_tsvector('english', heading || text)``)
with a GIN index, ranked by ``ts_rank``. SQLite: an FTS5 table over heading and text
(``porter unicode61``), kept in step by triggers, ranked by BM25. The query terms, the
stop words and the time bound are memory's (``query_terms``, ``time_bound``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection

from documents.models import Chunk
from memory.search import query_terms, time_bound


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
SQLITE_SQL = (
    f"SELECT {COLUMNS}, -bm25(document_chunks_fts) AS score FROM document_chunks_fts "
    "JOIN document_chunks c ON c.id = document_chunks_fts.rowid JOIN documents d ON d.id = c.document_id "
    "WHERE document_chunks_fts MATCH %s AND c.tenant_id = %s AND c.collection_id IN ({ids}) "
    "ORDER BY score DESC, c.id LIMIT %s"
)


def chunk_search(
    *, tenant_id: uuid.UUID, collection_ids: Sequence[uuid.UUID], text: str, top_k: int, timeout: float
) -> list[ChunkHit]:
    """The ``top_k`` chunks of these collections most relevant to ``text``, best first."""
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
    return [
        ChunkHit(
            chunk_id=row[0],
            document_id=uuid.UUID(str(row[1])),
            collection_id=uuid.UUID(str(row[2])),
            filename=row[3],
            ordinal=row[4],
            heading=row[5],
            page=row[6],
            text=row[7],
            score=float(row[8]),
        )
        for row in rows
    ]
