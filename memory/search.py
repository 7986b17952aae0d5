"""Relevance-ranked full-text search over the embedded store, per database.

- PostgreSQL: a stored generated column ``search_vector`` =
  ``to_tsvector('english', text)`` with a GIN index (migration 0002, PostgreSQL
  only, so the model does not declare it) matched against an OR of the query's
  terms and ranked by ``ts_rank``. Storing the vector matters: ranking
  thousands of matches by re-parsing their text was 60x slower (bench/).
- SQLite: an FTS5 table (``porter unicode61`` tokenizer, kept in step with
  ``memory_items`` by triggers) matched against the same OR of terms, ranked
  by BM25 (``-bm25()`` so that higher is better, as on PostgreSQL).

Both stem English words, ignore stop words and rank documents that share more
(and rarer) terms with the query higher. Scores are comparable within one
database, not across them. Each search is bounded in time.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction

from memory.models import MemoryItem

MAX_TERMS = 24
WORD = re.compile(r"[^\W_]+")
_STOP_TEXT = """
a about above after again all am an and any are as at be been before being below between both but by
can could did do does doing down during each few for from further had has have having he her here
hers herself him himself his how i if in into is it its itself just me more most my myself no nor
not now of off on once only or other our ours ourselves out over own same she should so some such
than that the their theirs them themselves then there these they this those through to too under
until up very was we were what when where which while who whom why will with would you your yours
yourself yourselves
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())


class SearchTimeout(Exception):
    """The search ran longer than its time bound."""


def query_terms(text: str) -> list[str]:
    """Distinct lower-cased words of ``text`` without stop words, at most ``MAX_TERMS``."""
    seen: dict[str, None] = {}
    for word in WORD.findall(text.lower()):
        if len(word) > 1 and word not in STOP_WORDS:
            seen.setdefault(word[:64], None)
        if len(seen) >= MAX_TERMS:
            break
    return list(seen)


def search_items(
    *, tenant_id: uuid.UUID, namespace: str, text: str, top_k: int, timeout: float
) -> list[tuple[MemoryItem, float]]:
    """The ``top_k`` items of one namespace most relevant to ``text``, best first, with scores."""
    terms = query_terms(text)
    if not terms or top_k <= 0:
        return []
    # In a turn's recall (memory.services.recall) a failed search gives up the transaction.
    with time_bound(timeout, savepoint=False):
        if connection.vendor == "postgresql":
            return _postgres(tenant_id=tenant_id, namespace=namespace, terms=terms, top_k=top_k)
        return _sqlite(tenant_id=tenant_id, namespace=namespace, terms=terms, top_k=top_k)


# Every column of the model (not the PostgreSQL-only ``search_vector``): the ranking query
# returns whole items, so there is no second query to load them.
ITEM_COLUMNS = ", ".join(f'm."{f.column}"' for f in MemoryItem._meta.concrete_fields)
POSTGRES_SQL = (
    f"SELECT {ITEM_COLUMNS}, ts_rank(m.search_vector, q) AS score "
    "FROM memory_items m, to_tsquery('english', %s) q "
    "WHERE m.tenant_id = %s AND m.namespace = %s AND m.search_vector @@ q "
    "ORDER BY score DESC, m.id DESC LIMIT %s"
)
SQLITE_SQL = (
    f"SELECT {ITEM_COLUMNS}, -bm25(memory_items_fts) AS score FROM memory_items_fts "
    "JOIN memory_items m ON m.id = memory_items_fts.rowid "
    "WHERE memory_items_fts MATCH %s AND m.tenant_id = %s AND m.namespace = %s "
    "ORDER BY score DESC, m.id DESC LIMIT %s"
)


def _postgres(
    *, tenant_id: uuid.UUID, namespace: str, terms: list[str], top_k: int
) -> list[tuple[MemoryItem, float]]:
    return _ranked(POSTGRES_SQL, " | ".join(terms), tenant_id=tenant_id, namespace=namespace, top_k=top_k)


def _sqlite(
    *, tenant_id: uuid.UUID, namespace: str, terms: list[str], top_k: int
) -> list[tuple[MemoryItem, float]]:
    match = " OR ".join(f'"{term}"' for term in terms)
    return _ranked(SQLITE_SQL, match, tenant_id=tenant_id, namespace=namespace, top_k=top_k)


def _ranked(
    sql: str, match: str, *, tenant_id: uuid.UUID, namespace: str, top_k: int
) -> list[tuple[MemoryItem, float]]:
    tenant = MemoryItem._meta.get_field("tenant").get_db_prep_value(tenant_id, connection)
    rows = MemoryItem.objects.raw(sql, [match, tenant, namespace, top_k])
    # ``score`` is the query's extra column, set on each item by the raw query set.
    return [(item, float(item.score)) for item in rows]  # type: ignore[attr-defined]


@contextmanager
def time_bound(timeout: float, *, what: str = "memory search", savepoint: bool = True) -> Iterator[None]:
    """Abort the database work inside after ``timeout`` seconds (statement_timeout / progress handler).

    Inside a caller's transaction it is a savepoint, unless ``savepoint=False``: then the bound
    holds until the caller's transaction ends, and a timeout aborts that transaction (two
    statements fewer, for a caller that gives up on the whole transaction anyway).
    """
    if connection.vendor == "postgresql":
        with transaction.atomic(savepoint=savepoint):
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('statement_timeout', %s, true)", [str(max(1, int(timeout * 1000)))]
                )
            yield
        return
    if connection.vendor != "sqlite":
        yield
        return
    connection.ensure_connection()
    raw = connection.connection
    deadline = time.monotonic() + timeout
    raw.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10_000)
    try:
        yield
    except Exception as exc:
        if time.monotonic() > deadline:
            raise SearchTimeout(f"{what} took longer than {timeout}s") from exc
        raise
    finally:
        raw.set_progress_handler(None, 10_000)
