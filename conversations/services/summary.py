"""Summarising a session's older messages in the background, with the ``summary`` model profile.

A turn's prompt holds the last ``SOMA_HISTORY_WINDOW_EVENTS`` messages (trimmed
to the token budget). Messages older than that window are folded into one
running summary per session (``session_summaries``), which the prompt carries
as a system message. When a turn of a session longer than the window ends
(``conversations.turn.end``), it queues a summary run if at least
``SUMMARY_STEP`` messages have left the window since the last summary: an
outbox row (same transaction) queues ``conversation.summarise_session`` on the
``default`` queue (a backlog must not delay user turns on ``conversation``).
Whether that is so is decided when the turn reads its history window
(``summary_due``): the same walk reads ``SUMMARY_STEP`` messages further back,
and the turn's message and reply are the two that follow, so the end reads
nothing more. (Messages sent while the reply was being written are not
counted: the next turn's check sees them.)
The task folds the oldest of them — as many as fit 60 % of the context budget
(and at most ``SOMA_SUMMARY_BATCH_MESSAGES``) — into the summary with
the ``summary`` profiles (falling back to the dialogue models), and stores the
result only if nobody advanced the summary meanwhile, so redelivery and
concurrent runs are harmless. A long backlog is worked through batch by batch.

Branches (conversations/branches.py): the window and the messages folded in are
those of the branch the turn ended on; the summary remembers its last message
(``covered_event_id``), and a turn uses it only if that message is on its own
branch. A turn ending on another branch starts that branch's summary afresh, in
place of the other one (one summary per session: the active branch's).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations.branches import branch_after, branch_walk, branch_walk_seqs
from conversations.llm.fallback import model_answer
from conversations.llm.port import ChatRequest, LlmError, LlmPort
from conversations.llm.resolve import Role, model_chain
from conversations.models import EventType, Session, SessionEvent, SessionSummary
from conversations.selectors import HISTORY_TYPES, summary_on_branch
from conversations.turn.context_window import context_budget
from somaagent.outbox import outbox_enqueue
from somaagent.tokens import estimate_tokens

log = logging.getLogger(__name__)

SUMMARY_TOPIC = "conversation.summary"
SUMMARY_TASK = "conversation.summarise_session"

SUMMARY_STEP = 10
MESSAGE_CHARS = 2000
# Share of the context budget one summary run may spend on new messages (the rest: the
# previous summary, the instructions and the answer), so a run fits the summary model too.
TRANSCRIPT_SHARE = 0.6
SUMMARY_WORDS = 250
INSTRUCTIONS = (
    "You keep a running summary of a conversation between a user and an assistant. "
    "Rewrite the summary so that it also covers the new messages. Keep names, facts, "
    "preferences, decisions and open questions; drop small talk. Write at most "
    f"{SUMMARY_WORDS} words of plain prose and nothing else."
)


def _leaf_of(session_id: uuid.UUID, leaf: uuid.UUID | str | None) -> uuid.UUID | None:
    """The branch to summarise: the one ending at ``leaf``, else the session's active one."""
    if leaf is not None:
        return uuid.UUID(str(leaf))
    return Session.objects.filter(pk=session_id).values_list("leaf_event_id", flat=True).first()


def _window_boundary(session_id: uuid.UUID, leaf: uuid.UUID) -> int | None:
    """The cursor of the oldest message still inside the branch's history window, or None if
    all are."""
    window = settings.SOMA.history_window_events
    recent = branch_walk(session_id=session_id, leaf=leaf, types=HISTORY_TYPES, limit=window)
    return recent[0].seq if len(recent) >= window else None


def _summary_of_branch(session_id: uuid.UUID, leaf: uuid.UUID) -> tuple[SessionSummary | None, int, str]:
    """The session's summary row, and the cursor and text it gives this branch: its own if it
    summarises this branch (one with branches may hold another branch's), else nothing yet."""
    row = SessionSummary.objects.filter(session_id=session_id).first()
    if row is None or row.covered_seq == 0:
        return row, 0, ""
    branched = Session.objects.filter(pk=session_id, branched=True).exists()
    if branched and summary_on_branch(session_id=session_id, leaf=leaf, covered_seq=row.covered_seq) != (
        row.covered_event_id
    ):
        return row, 0, ""
    return row, row.covered_seq, row.text


def _outside_window(
    session_id: uuid.UUID, leaf: uuid.UUID, covered: int, boundary: int, limit: int
) -> list[SessionEvent]:
    """The oldest ``limit`` messages of the branch between the summary and the window."""
    events = branch_after(session_id=session_id, leaf=leaf, after=covered, types=HISTORY_TYPES)
    return [e for e in events if e.seq < boundary][:limit]


@dataclass(frozen=True)
class SummaryDue:
    """A summary run is due: the branch's summary covers up to ``covered``, and the messages
    from the one after it to the window's ``boundary`` have left the window."""

    covered: int
    boundary: int


def summary_reach() -> int:
    """How many of a branch's last messages ``summary_due`` looks at: the window, and the
    ``SUMMARY_STEP`` before it."""
    return settings.SOMA.history_window_events + SUMMARY_STEP


def summary_due(seqs: list[int], *, covered: int, newer: int = 0) -> SummaryDue | None:
    """Whether at least ``SUMMARY_STEP`` messages of a branch have left its history window since
    the summary (covering up to ``covered``). ``seqs``: the cursors of the branch's last messages,
    oldest first, at least the ``summary_reach() - newer`` last ones when there are that many;
    ``newer`` more messages follow them (a turn's message and reply, before the reply exists)."""
    total = len(seqs) + newer
    if total < summary_reach():
        return None  # the window is not full, or fewer than SUMMARY_STEP messages left it
    first = total - summary_reach()  # the oldest message of the reach, in ``seqs``
    oldest_left, boundary = seqs[first], seqs[first + SUMMARY_STEP]
    return SummaryDue(covered=covered, boundary=boundary) if oldest_left > covered else None


def summary_enqueue(*, session_id: uuid.UUID, leaf: uuid.UUID, due: SummaryDue) -> bool:
    """Queue the summary run of the branch ending at ``leaf`` (in the caller's transaction);
    False if this very run is queued already."""
    row = outbox_enqueue(
        topic=SUMMARY_TOPIC,
        payload={"session_id": str(session_id), "leaf": str(leaf)},
        dedupe_key=f"summary:{session_id}:{due.covered}:{due.boundary}",
    )
    return row is not None


def summary_after_turn(*, session_id: uuid.UUID, leaf: uuid.UUID | None = None) -> bool:
    """Queue a summary run when enough messages of the branch ending at ``leaf`` (default: the
    active one) have left the window, reading the branch afresh: a bounded walk (it stops
    SUMMARY_STEP messages past the window) and the summary row; in-transaction. A turn decides
    it from its prompt's walk instead (``summary_due``)."""
    branch = _leaf_of(session_id, leaf)
    if branch is None:
        return False
    seqs = branch_walk_seqs(session_id=session_id, leaf=branch, types=HISTORY_TYPES, limit=summary_reach())
    if len(seqs) < summary_reach():
        return False  # no need to read the summary row
    _, covered, _ = _summary_of_branch(session_id, branch)
    due = summary_due(seqs, covered=covered)
    return due is not None and summary_enqueue(session_id=session_id, leaf=branch, due=due)


def summary_continue(*, session_id: uuid.UUID, covered: int, leaf: uuid.UUID) -> None:
    """Queue the next batch of a backlog (in the caller's transaction)."""
    outbox_enqueue(
        topic=SUMMARY_TOPIC,
        payload={"session_id": str(session_id), "leaf": str(leaf)},
        dedupe_key=f"summary:{session_id}:{covered}:more",
    )


def _line(event: SessionEvent) -> str:
    who = "User" if event.type == EventType.USER_MESSAGE else "Assistant"
    text = str(event.payload.get("message", ""))
    if len(text) > MESSAGE_CHARS:
        text = text[:MESSAGE_CHARS] + " […]"
    return f"{who}: {text}"


def _fitting(events: list[SessionEvent], *, previous: str) -> list[SessionEvent]:
    """The oldest events whose transcript fits this run's token share (at least one)."""
    room = int(context_budget() * TRANSCRIPT_SHARE) - estimate_tokens(previous)
    kept: list[SessionEvent] = []
    for event in events:
        room -= estimate_tokens(_line(event)) + 1
        if kept and room < 0:
            break
        kept.append(event)
    return kept


def summary_messages(*, previous: str, events: list[SessionEvent]) -> list[dict[str, Any]]:
    transcript = "\n".join(_line(e) for e in events)
    return [
        {"role": "system", "content": INSTRUCTIONS},
        {
            "role": "user",
            "content": f"Summary so far:\n{previous or '(none yet)'}\n\nNew messages:\n{transcript}",
        },
    ]


def session_summarise(
    *, session_id: uuid.UUID | str, port: LlmPort, leaf: uuid.UUID | str | None = None
) -> str:
    """Fold one batch of the messages of a branch (ending at ``leaf``; default: the active one)
    that left the window into the summary; returns what happened."""
    sid = uuid.UUID(str(session_id))
    if not Session.objects.filter(pk=sid).exists():
        return "no_session"
    branch = _leaf_of(sid, leaf)
    if branch is None:
        return "nothing_to_do"
    boundary = _window_boundary(sid, branch)
    if boundary is None:
        return "nothing_to_do"
    try:
        SessionSummary.objects.get_or_create(session_id=sid)
    except IntegrityError:
        return "no_session"  # deleted just now
    existing, covered, previous = _summary_of_branch(sid, branch)
    if existing is None:
        return "no_session"
    backlog = _outside_window(sid, branch, covered, boundary, settings.SOMA.summary_batch_messages)
    if not backlog:
        return "nothing_to_do"
    events = _fitting(backlog, previous=previous)
    chain = model_chain(role=Role.SUMMARY)
    if not chain:
        return "no_model"
    request = ChatRequest(target=chain[0], messages=summary_messages(previous=previous, events=events))
    try:
        text, answered_by = model_answer(port, chain, request)
        text = text.strip()
    except LlmError as exc:
        log.warning(
            "summary failed; a later turn will queue it again",
            extra={"session_id": str(sid), "code": exc.code},
        )
        return "model_failed"
    if not text:
        return "empty"
    with transaction.atomic():
        row = SessionSummary.objects.select_for_update().filter(session_id=sid).first()
        if row is None:
            return "no_session"  # deleted while the model wrote the summary
        if row.covered_seq != existing.covered_seq:
            return "superseded"
        row.messages = (row.messages if covered else 0) + len(events)
        row.text = text
        row.covered_seq = events[-1].seq
        row.covered_event_id = events[-1].event_id
        row.model = answered_by.model
        row.updated_at = timezone.now()
        row.save()
        if len(events) < len(backlog) or len(backlog) == settings.SOMA.summary_batch_messages:
            summary_continue(session_id=sid, covered=row.covered_seq, leaf=branch)
    return "summarised"
