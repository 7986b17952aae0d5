"""Searching your own conversations (issue 18): your messages and the replies to them.

Every word of the query must appear (English stemming: "trains" finds "train"), the best
matches first (on PostgreSQL: ``ts_rank`` over the caller's 1,000 most recent matches, found
through a GIN expression index; on SQLite: BM25 over an FTS5 table; migration 0010), each
with a snippet and where its matches are, so a client can highlight them without trusting
any markup. Only the sessions the caller may see are searched; a search is bounded in time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.utils.dateparse import parse_datetime

from conversations.models import Session
from memory.search import query_terms, time_bound
from somaagent.identity.principal import Principal

SEARCH_SECONDS = 3.0
MAX_OFFSET = 1000
START, STOP = "\x02", "\x03"  # match markers inside snippets; never in stored text (text_storable)

_FIELDS = "e.id, e.seq, e.event_id, e.type, e.occurred_at, e.session_id, s.title"
# Ranking reads each matching message's text again (the index holds no vectors), so it is
# bounded: the caller's most recent CANDIDATES matches, found through the GIN index, are ranked
# and the page is cut from those. A common word in 100,000 messages ranked every match and ran
# into the statement timeout (bench/search.py).
CANDIDATES = 1000
_POSTGRES = (
    "WITH q AS (SELECT to_tsquery('english', %s) AS q), "
    "candidates AS (SELECT e.id FROM session_events e JOIN sessions s ON s.id = e.session_id, q "
    "WHERE e.type IN ('user.message', 'assistant.final') "
    "AND to_tsvector('english', COALESCE(e.payload->>'message', '')) @@ q.q AND s.tenant_id = %s {owner} "
    "ORDER BY e.id DESC LIMIT %s) "
    f"SELECT {_FIELDS}, ts_rank(to_tsvector('english', COALESCE(e.payload->>'message', '')), q.q) AS score, "
    "ts_headline('english', COALESCE(e.payload->>'message', ''), q.q, "
    "'StartSel=\x02, StopSel=\x03, MaxWords=30, MinWords=12, MaxFragments=1') AS snippet "
    "FROM candidates c JOIN session_events e ON e.id = c.id JOIN sessions s ON s.id = e.session_id, q "
    "ORDER BY score DESC, e.id DESC LIMIT %s OFFSET %s"
)
_SQLITE = (
    f"SELECT {_FIELDS}, -bm25(session_events_fts) AS score, "
    "snippet(session_events_fts, 0, char(2), char(3), '…', 24) AS snippet "
    "FROM session_events_fts JOIN session_events e ON e.id = session_events_fts.rowid "
    "JOIN sessions s ON s.id = e.session_id "
    "WHERE session_events_fts MATCH %s AND s.tenant_id = %s {owner} "
    "ORDER BY score DESC, e.id DESC LIMIT %s OFFSET %s"
)


@dataclass(frozen=True)
class Hit:
    session_id: str
    session_title: str
    event_id: str
    cursor: str
    type: str
    occurred_at: datetime
    snippet: str
    highlights: list[tuple[int, int]]  # [start, end) of each match within ``snippet``


def _unmark(marked: str) -> tuple[str, list[tuple[int, int]]]:
    text: list[str] = []
    spans: list[tuple[int, int]] = []
    length, start = 0, None
    for ch in marked:
        if ch == START:
            start = length
        elif ch == STOP:
            if start is not None and length > start:
                spans.append((start, length))
            start = None
        else:
            text.append(ch)
            length += 1
    return "".join(text), spans


def conversation_search(*, principal: Principal, query: str, limit: int, offset: int) -> list[Hit]:
    """The caller's messages and replies matching every word of ``query``, best first."""
    terms = query_terms(query)
    if not terms:
        return []
    postgres = connection.vendor == "postgresql"
    match = " & ".join(terms) if postgres else " AND ".join(f'"{t}"' for t in terms)
    tenant = Session._meta.get_field("tenant").get_db_prep_value(principal.tenant.pk, connection)
    params: list[Any] = [match, tenant]
    owner = principal.session_owner
    if owner is not None:
        params.append(owner.pk)
    if postgres:
        params.append(CANDIDATES)
    params += [limit, min(max(0, offset), MAX_OFFSET)]
    sql = (_POSTGRES if postgres else _SQLITE).format(owner="AND s.created_by_id = %s" if owner else "")
    with time_bound(SEARCH_SECONDS, what="conversation search"), connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    hits = []
    for _id, seq, event_id, kind, occurred_at, session_id, title, _score, snippet in rows:
        text, spans = _unmark(str(snippet or ""))
        hits.append(
            Hit(
                session_id=str(uuid.UUID(str(session_id))),
                session_title=str(title or ""),
                event_id=str(uuid.UUID(str(event_id))),
                cursor=str(seq),
                type=str(kind),
                occurred_at=_aware(occurred_at),
                snippet=text,
                highlights=spans,
            )
        )
    return hits


def _aware(value: Any) -> datetime:
    """A timestamp from a raw row: a datetime on PostgreSQL, UTC text on SQLite."""
    when = value if isinstance(value, datetime) else parse_datetime(str(value))
    if when is None:
        raise ValueError(f"not a timestamp: {value!r}")
    return when if when.tzinfo else when.replace(tzinfo=UTC)
