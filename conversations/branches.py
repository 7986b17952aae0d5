"""Reading branches: a session's events form a tree by ``parent_id``; a branch is a path.

Every persisted event names the event before it on its branch (``parent_id``,
an ``event_id`` of the same session; null for a first message). Editing a
message or asking for another reply adds a child beside the existing ones, so
the old branch stays whole. A branch is named by its leaf; the session's
*active* branch is the one that ends at its newest persisted event
(``Session.leaf_event_id``). Parents always have smaller cursors than their
children, so a walk from a leaf towards the root visits cursors in decreasing
order and can stop as soon as it has what it needs: the history window of a
turn walks only as far back as the window reaches, whatever the session's length.

Sessions written before branches were backfilled as one linear branch (migration
0011); a session whose events were never linked (no leaf) reads as one line.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection

from conversations.models import Session, SessionEvent
from somaagent.sql import p_uuid, v_uuid

_EVENTS = SessionEvent._meta.db_table
_COLUMNS = "id, session_id, seq, event_id, type, role, occurred_at, payload, parent_id"
ROOT = "root"  # the key of a session's first messages in ``branch_siblings``


def _walk_sql(*, stop_at_or_below: bool) -> str:
    """A lazy walk up the parent links from one event of the session (rows come out leaf first).

    Each step is one lookup on the unique ``event_id`` index; parent links never leave their
    session (they are checked when written), and what the walk finds is loaded by session
    again (``_load``, or ``branch_walk``'s ``session_id =``), so another session's event could
    not be listed even if one did.
    """
    stop = " WHERE e.seq > %s" if stop_at_or_below else ""
    return (
        "WITH RECURSIVE up(id, parent_id, seq, type) AS ("
        f" SELECT id, parent_id, seq, type FROM {_EVENTS} WHERE session_id = %s AND event_id = %s"
        " UNION ALL"
        f" SELECT e.id, e.parent_id, e.seq, e.type FROM {_EVENTS} e"
        f" JOIN up ON e.event_id = up.parent_id{stop})"
    )


def _load(session_id: uuid.UUID, ids: Sequence[int]) -> list[SessionEvent]:
    if not ids:
        return []
    rows = SessionEvent.objects.filter(session_id=session_id)
    found: list[SessionEvent] = []
    for start in range(0, len(ids), _LOAD_BATCH):
        found += rows.filter(pk__in=ids[start : start + _LOAD_BATCH])
    found.sort(key=lambda e: e.seq)
    return found


_LOAD_BATCH = 1000


def branch_walk(
    *,
    session_id: uuid.UUID,
    leaf: uuid.UUID,
    types: Iterable[str] | None = None,
    limit: int | None = None,
    before: int | None = None,
) -> list[SessionEvent]:
    """The last events of the branch ending at ``leaf`` (included), in cursor order: optionally
    only of ``types``, only with a cursor below ``before``, and at most ``limit`` of them (the
    nearest to the leaf); the walk stops when it has them. One statement: the walk and the
    events it found (a turn's history window is read this way at every claim)."""
    select, params = _walk_select("id", types=types, limit=limit, before=before)
    sid = p_uuid(session_id)
    sql = (
        _walk_sql(stop_at_or_below=False)
        + f" SELECT {_COLUMNS} FROM {_EVENTS} WHERE session_id = %s AND id IN ({select}) ORDER BY seq"
    )
    return list(SessionEvent.objects.raw(sql, [sid, p_uuid(leaf), sid, *params]))


def branch_walk_seqs(
    *, session_id: uuid.UUID, leaf: uuid.UUID, types: Iterable[str] | None = None, limit: int | None = None
) -> list[int]:
    """``branch_walk``'s cursors only, in cursor order: one statement, no event loaded."""
    return sorted(int(r[0]) for r in _walk(session_id, leaf, "seq", types=types, limit=limit, before=None))


def _walk(
    session_id: uuid.UUID,
    leaf: uuid.UUID,
    column: str,
    *,
    types: Iterable[str] | None,
    limit: int | None,
    before: int | None,
) -> list[tuple[Any, ...]]:
    select, params = _walk_select(column, types=types, limit=limit, before=before)
    with connection.cursor() as cursor:
        cursor.execute(
            _walk_sql(stop_at_or_below=False) + " " + select, [p_uuid(session_id), p_uuid(leaf), *params]
        )
        return list(cursor.fetchall())


def _walk_select(
    column: str, *, types: Iterable[str] | None, limit: int | None, before: int | None
) -> tuple[str, list[Any]]:
    """What a walk (``_walk_sql``) yields: ``column`` of its events of ``types`` below ``before``,
    the first ``limit`` of them from the leaf; with its parameters."""
    where: list[str] = []
    params: list[Any] = []
    if types is not None:
        kinds = [str(t) for t in types]
        where.append(f"type IN ({', '.join(['%s'] * len(kinds))})")
        params += kinds
    if before is not None:
        where.append("seq < %s")
        params.append(before)
    sql = f"SELECT {column} FROM up"
    if where:
        sql += " WHERE " + " AND ".join(where)
    if limit is not None:
        sql += " LIMIT %s"
        params.append(limit)
    return sql, params


def branch_after(
    *,
    session_id: uuid.UUID,
    leaf: uuid.UUID,
    after: int,
    limit: int | None = None,
    types: Iterable[str] | None = None,
) -> list[SessionEvent]:
    """The first ``limit`` events (optionally of ``types``) of the branch ending at ``leaf`` with
    a cursor above ``after``, in order (the walk covers the branch from the leaf back to ``after``)."""
    sid = p_uuid(session_id)
    sql = _walk_sql(stop_at_or_below=True) + " SELECT id, seq FROM up WHERE seq > %s"
    params: list[Any] = [sid, p_uuid(leaf), after, after]
    if types is not None:
        kinds = [str(t) for t in types]
        sql += f" AND type IN ({', '.join(['%s'] * len(kinds))})"
        params += kinds
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = sorted((int(seq), int(pk)) for pk, seq in cursor.fetchall())
    return _load(session_id, [pk for _, pk in rows[:limit]])


def branch_holds(*, session_id: uuid.UUID, leaf: uuid.UUID, event_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Which of ``event_ids`` lie on the branch ending at ``leaf`` (the walk up from the leaf
    stops below the oldest of them, so it costs the branch's length from there)."""
    rows = {
        pk: (eid, seq)
        for pk, eid, seq in SessionEvent.objects.filter(session_id=session_id, event_id__in=list(event_ids))
        .values_list("pk", "event_id", "seq")
        .order_by()
    }
    if not rows:
        return set()
    oldest = min(seq for _, seq in rows.values())
    sql = _walk_sql(stop_at_or_below=True) + " SELECT id FROM up WHERE seq >= %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [p_uuid(session_id), p_uuid(leaf), oldest - 1, oldest])
        on = {int(r[0]) for r in cursor.fetchall()}
    return {eid for pk, (eid, _) in rows.items() if pk in on}


def branch_leaf_through(*, session_id: uuid.UUID, event_id: uuid.UUID) -> uuid.UUID | None:
    """The leaf of the branch through ``event_id``: from it, down through the newest child at
    each step (None if the session has no such event)."""
    sid = p_uuid(session_id)
    sql = (
        "WITH RECURSIVE down(eid, depth) AS ("
        f" SELECT event_id, 0 FROM {_EVENTS} WHERE session_id = %s AND event_id = %s"
        " UNION ALL"
        f" SELECT (SELECT c.event_id FROM {_EVENTS} c WHERE c.parent_id = down.eid"
        " ORDER BY c.seq DESC LIMIT 1), depth + 1 FROM down WHERE down.eid IS NOT NULL)"
        " SELECT eid FROM down WHERE eid IS NOT NULL ORDER BY depth DESC LIMIT 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [sid, p_uuid(event_id)])
        row = cursor.fetchone()
    return v_uuid(row[0]) if row else None


def branch_siblings(*, session_id: uuid.UUID, events: Iterable[SessionEvent]) -> dict[str, list[str]]:
    """For the events given, the children of their parents where there is a choice: parent
    event id (``ROOT`` for first messages) → its children's event ids, oldest first."""
    parents = {e.parent_id for e in events}
    if not parents:
        return {}
    rows = SessionEvent.objects.filter(session_id=session_id)
    known = [p for p in parents if p is not None]
    children: dict[str, list[str]] = {}
    query = rows.filter(parent_id__in=known) if known else rows.none()
    if None in parents:
        query = query | rows.filter(parent_id__isnull=True)
    for parent, child in query.order_by("seq").values_list("parent_id", "event_id"):
        children.setdefault(str(parent) if parent else ROOT, []).append(str(child))
    return {parent: kids for parent, kids in children.items() if len(kids) > 1}


def session_leaf(session: Session) -> uuid.UUID | None:
    """The active branch's leaf: the session's newest persisted event."""
    return session.leaf_event_id


def event_of_session(*, session_id: uuid.UUID, event_id: object) -> SessionEvent | None:
    try:
        eid = uuid.UUID(str(event_id))
    except (ValueError, TypeError, AttributeError):
        return None
    return SessionEvent.objects.filter(session_id=session_id, event_id=eid).first()
