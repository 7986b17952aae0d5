"""Appending events to a session: cursor allocation, persistence, publication.

The session row's ``last_seq`` is advanced with ``UPDATE … RETURNING`` inside
the caller's transaction, so the row lock orders every writer of a session:
a cursor is handed out only after the transaction that took the previous one
has committed. Every event — persisted or a delta — goes to the stream buffer
only after its cursor is committed: a cursor whose transaction rolled back (a
worker killed mid-delta) is handed out again, so it must never be seen.
A delta's cursor is taken in one committed statement that also checks the
turn's lease, with the other deltas of its round (``delta_cursors_take``); the
lease itself is renewed by the turn watcher. The turn's first delta needs none:
``assistant.started`` takes its event's cursor and the next one together
(``reserve``), committed in the claim.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from conversations import stream_buffer
from conversations.envelope import Envelope, envelope_of, make_envelope
from conversations.models import EventType, Session, SessionEvent, Turn
from somaagent.errors import NotFound
from somaagent.sql import p_uuid, v_uuid

_ROLE_OF = {
    EventType.USER_MESSAGE: "user",
    EventType.TOOL_START: "tool",
    EventType.TOOL_RESULT: "tool",
    EventType.TOOL_APPROVAL_REQUESTED: "tool",
    EventType.TOOL_APPROVAL_DECIDED: "tool",
}


def role_of(event_type: str) -> str:
    return _ROLE_OF.get(EventType(event_type), "assistant")


# The session's cursor after taking one (or reusing ``reuse``, if it is still the last one
# handed out), plus ``reserve`` more.
_NEXT_LAST_SEQ = "CASE WHEN last_seq = %s THEN last_seq ELSE last_seq + 1 END + %s"
# The new event's own cursor (``_NEXT_LAST_SEQ`` without the reservation).
_EVENT_SEQ = "(CASE WHEN last_seq = %s THEN last_seq ELSE last_seq + 1 END)"


@dataclass(frozen=True)
class Attach:
    """Where a new event goes in the session's tree of events (its ``parent_id``).

    ``explicit``: under ``parent`` (None: a new root), starting a branch there if that
    event already has children. Otherwise it follows ``anchor`` (None: the session's leaf):
    under the session's leaf when the anchor lies on the path that ends there (messages sent
    while a reply was being written went after the anchor, and the reply goes after them),
    else under the anchor itself (the reply's branch moved on elsewhere meanwhile).
    """

    parent: uuid.UUID | None = None
    explicit: bool = False
    anchor: uuid.UUID | None = None


FOLLOW_LEAF = Attach()


def attach_under(parent: uuid.UUID | None) -> Attach:
    return Attach(parent=parent, explicit=True)


def attach_after(anchor: uuid.UUID) -> Attach:
    return Attach(anchor=anchor)


def _tree_update(attach: Attach, *, event_id: uuid.UUID, reuse: int | None) -> tuple[str, list[Any]]:
    """SET clauses (and their parameters) that keep the session's leaf, the leaf's parent and
    its chain start; every right-hand side reads the row's values before the update, which
    are the newest ones (the UPDATE holds the row lock)."""
    if attach.explicit:
        parent_sql, parent_params = "%s", [p_uuid(attach.parent)]
        chain_sql, chain_params = _EVENT_SEQ, [reuse]
    elif attach.anchor is None:
        parent_sql, parent_params = "leaf_event_id", []
        chain_sql, chain_params = "chain_seq", []
    else:
        on_path = f"(SELECT a.seq FROM {SessionEvent._meta.db_table} a WHERE a.event_id = %s) >= chain_seq"
        anchor = p_uuid(attach.anchor)
        parent_sql, parent_params = f"CASE WHEN {on_path} THEN leaf_event_id ELSE %s END", [anchor, anchor]
        chain_sql, chain_params = f"CASE WHEN {on_path} THEN chain_seq ELSE {_EVENT_SEQ} END", [anchor, reuse]
    sql = f"leaf_parent_id = {parent_sql}, chain_seq = {chain_sql}, leaf_event_id = %s"
    if attach.explicit:
        sql += ", branched = %s"
        return sql, [*parent_params, *chain_params, p_uuid(event_id), True]
    return sql, [*parent_params, *chain_params, p_uuid(event_id)]


def allocate_seq(*, session_id: uuid.UUID | str, reserve: int = 0, reuse: int | None = None) -> int:
    """Take the session's next cursor without an event (a regenerated reply's place in the
    session's queue of turns); must run inside a transaction."""
    pk = Session._meta.pk.get_db_prep_value(uuid.UUID(str(session_id)), connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Session._meta.db_table} SET last_seq = {_NEXT_LAST_SEQ}, updated_at = %s "
            "WHERE id = %s RETURNING last_seq",
            [reuse, reserve, timezone.now(), pk],
        )
        row = cursor.fetchone()
    if row is None:
        raise NotFound("Session not found.")
    return int(row[0]) - reserve


def event_append(
    *,
    session_id: uuid.UUID | str,
    type: str,
    data: dict[str, Any],
    publish: bool = True,
    publish_batched: bool = False,
    reserve: int = 0,
    reuse: int | None = None,
    attach: Attach = FOLLOW_LEAF,
    event_id: uuid.UUID | None = None,
) -> SessionEvent:
    """Persist one event in the current transaction; publish it to readers on commit.

    ``publish_batched``: publish by the process's publisher thread instead of before the
    commit returns (the accept: its answer does not wait for Redis).
    ``reserve``: also take that many cursors after the event's, for the caller to give
    transient deltas (they are committed with the event, like ``delta_cursor_take``'s).
    ``reuse``: such a cursor the caller did not need; the event takes it instead of a new
    one if no later cursor was handed out (no reader can have skipped it then), so an
    unused reservation leaves no hole. ``attach``: where it goes in the tree of branches.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("event_append must run inside transaction.atomic()")
    now = timezone.now()
    event = SessionEvent(
        session_id=uuid.UUID(str(session_id)),
        type=str(type),
        role=role_of(type),
        payload=data,
        occurred_at=now,
    )
    if event_id is not None:
        event.event_id = event_id
    tree_sql, tree_params = _tree_update(attach, event_id=event.event_id, reuse=reuse)
    update = (
        f"UPDATE {Session._meta.db_table} SET last_seq = {_NEXT_LAST_SEQ}, updated_at = %s, {tree_sql}"
        " WHERE id = %s"
    )
    params: list[Any] = [reuse, reserve, now, *tree_params, p_uuid(event.session_id)]
    if connection.vendor == "postgresql":
        _insert_in_one_statement(event, update=update, params=params, reserve=reserve)
    else:
        with connection.cursor() as cursor:
            cursor.execute(update + " RETURNING last_seq, leaf_parent_id", params)
            row = cursor.fetchone()
        if row is None:
            raise NotFound("Session not found.")
        event.seq, event.parent_id = int(row[0]) - reserve, v_uuid(row[1])
        event.save(force_insert=True)
    if publish:
        envelope = envelope_of(event)
        publish_now = stream_buffer.publish_soon if publish_batched else stream_buffer.publish_best_effort
        transaction.on_commit(lambda: publish_now(envelope))
    return event


def _insert_in_one_statement(event: SessionEvent, *, update: str, params: list[Any], reserve: int) -> None:
    """PostgreSQL: take the cursor and insert the event in one statement (a data-modifying CTE)."""
    payload = SessionEvent._meta.get_field("payload").get_db_prep_save(event.payload, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH s AS ({update} RETURNING id, last_seq - %s AS seq, leaf_parent_id)"
            f" INSERT INTO {SessionEvent._meta.db_table}"
            " (session_id, seq, event_id, type, role, occurred_at, payload, parent_id)"
            " SELECT s.id, s.seq, %s, %s, %s, %s, %s, s.leaf_parent_id FROM s RETURNING id, seq, parent_id",
            [*params, reserve, event.event_id, event.type, event.role, event.occurred_at, payload],
        )
        row = cursor.fetchone()
    if row is None:
        raise NotFound("Session not found.")
    event.pk, event.seq, event.parent_id = int(row[0]), int(row[1]), v_uuid(row[2])
    event._state.adding = False
    event._state.db = connection.alias


class GuardFailed(Exception):
    """The writer's precondition (for a turn: still owning its lease) no longer holds."""


def delta_cursor_take(*, session_id: uuid.UUID | str, lease: tuple[uuid.UUID, str] | None = None) -> int:
    """Take the next cursor for a transient delta in one committed statement.

    With ``lease`` (turn id, owner) no cursor is taken, and ``GuardFailed`` is
    raised, unless that owner still runs the turn.
    """
    session = uuid.UUID(str(session_id))
    if lease is not None:
        seq = delta_cursors_take([(session, *lease)]).get(session)
        if seq is None:
            if Session.objects.filter(pk=session).exists():
                raise GuardFailed()
            raise NotFound("Session not found.")
        return seq
    sql = f"UPDATE {Session._meta.db_table} SET last_seq = last_seq + 1 WHERE id = %s RETURNING last_seq"
    rows = _committed(sql, [p_uuid(session)])
    if not rows:
        raise NotFound("Session not found.")
    return int(rows[0][0])


def delta_cursors_take(leases: Sequence[tuple[uuid.UUID, uuid.UUID, str]]) -> dict[uuid.UUID, int]:
    """Take a delta's cursor in each session of ``leases`` (session id, turn id, owner) whose
    turn that owner still runs, in one committed statement; returns them by session id.

    At most one entry per session: a session's cursor advances once per statement.
    """
    if not leases:
        return {}
    pairs = ", ".join(["(%s, %s)"] * len(leases))
    sql = (
        f"UPDATE {Session._meta.db_table} SET last_seq = last_seq + 1 WHERE id IN"
        f" (SELECT session_id FROM {Turn._meta.db_table}"
        f" WHERE status = %s AND (id, lease_owner) IN ({pairs}))"
        " RETURNING id, last_seq"
    )
    params: list[Any] = [Turn.Status.RUNNING.value]
    for _, turn_id, owner in leases:
        params += [p_uuid(turn_id), owner]
    taken = {v_uuid(session): int(seq) for session, seq in _committed(sql, params)}
    return {session: taken[session] for session, _, _ in leases if session in taken}


def _committed(sql: str, params: list[Any]) -> list[Any]:
    """Run one cursor-taking statement, committed on its own: a cursor is committed before its
    delta is buffered, never inside a caller's transaction."""

    def run() -> list[Any]:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    if connection.in_atomic_block:
        with transaction.atomic(durable=True):  # raises in a caller's transaction (a test's is allowed)
            return run()
    # Autocommit: the statement commits itself, one round trip where BEGIN, UPDATE and
    # COMMIT were three (each a wait for the GIL on a busy worker).
    return run()


def delta_envelope(
    *, session_id: uuid.UUID | str, seq: int, data: dict[str, Any], parent_id: uuid.UUID | None = None
) -> Envelope:
    """A transient delta at a committed cursor (``delta_cursor_take``, ``delta_cursors_take``)."""
    return make_envelope(
        seq=seq,
        event_id=uuid.uuid4(),
        session_id=session_id,
        type=EventType.ASSISTANT_DELTA,
        role="assistant",
        occurred_at=timezone.now(),
        data=data,
        parent_id=parent_id,
    )


def delta_publish(
    *, session_id: uuid.UUID | str, seq: int, data: dict[str, Any], parent_id: uuid.UUID | None = None
) -> Envelope:
    """Put a transient delta with a committed cursor in the buffer.

    Raises ``stream_buffer.OutOfOrder`` when a later event reached the buffer
    first (readers skip this cursor): send the text again with a new cursor.
    """
    envelope = delta_envelope(session_id=session_id, seq=seq, data=data, parent_id=parent_id)
    stream_buffer.publish(envelope)
    return envelope
