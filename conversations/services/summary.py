"""Summarising a session's older messages in the background, with the ``summary`` model profile.

A turn's prompt holds the last ``SOMA_HISTORY_WINDOW_EVENTS`` messages (trimmed
to the token budget). Messages older than that window are folded into one
running summary per session (``session_summaries``), which the prompt carries
as a system message. When a turn of a session longer than the window ends
(``conversations.services.turn_end``), a bounded check sees whether at least
``SUMMARY_STEP`` messages have left the window since the last summary; if so an
outbox row (same transaction) queues ``conversation.summarise_session`` on the
``default`` queue (a backlog must not delay user turns on ``conversation``).
The task folds the oldest of them — as many as fit 60 % of the context budget
(and at most ``SOMA_SUMMARY_BATCH_MESSAGES``) — into the summary with
the ``summary`` profiles (falling back to the dialogue models), and stores the
result only if nobody advanced the summary meanwhile, so redelivery and
concurrent runs are harmless. A long backlog is worked through batch by batch.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations.llm.fallback import model_answer
from conversations.llm.port import ChatRequest, LlmError, LlmPort
from conversations.llm.resolve import Role, model_chain
from conversations.models import EventType, Session, SessionEvent, SessionSummary
from conversations.selectors import HISTORY_TYPES
from conversations.services.context import context_budget
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


def _window_boundary(session_id: uuid.UUID) -> int | None:
    """The cursor of the oldest message still inside the history window, or None if all are."""
    window = settings.SOMA.history_window_events
    seqs = list(
        SessionEvent.objects.filter(session_id=session_id, type__in=HISTORY_TYPES)
        .order_by("-seq")
        .values_list("seq", flat=True)[window - 1 : window]
    )
    return seqs[0] if seqs else None


def _covered_seq(session_id: uuid.UUID) -> int:
    row = SessionSummary.objects.filter(session_id=session_id).values_list("covered_seq", flat=True).first()
    return int(row or 0)


def _outside_window(session_id: uuid.UUID, covered: int, boundary: int, limit: int) -> list[SessionEvent]:
    return list(
        SessionEvent.objects.filter(
            session_id=session_id, type__in=HISTORY_TYPES, seq__gt=covered, seq__lt=boundary
        ).order_by("seq")[:limit]
    )


def summary_after_turn(*, session_id: uuid.UUID) -> bool:
    """Queue a summary run when enough messages have left the window; bounded cost, in-transaction."""
    boundary = _window_boundary(session_id)
    if boundary is None:
        return False
    covered = _covered_seq(session_id)
    if len(_outside_window(session_id, covered, boundary, SUMMARY_STEP)) < SUMMARY_STEP:
        return False
    return (
        outbox_enqueue(
            topic=SUMMARY_TOPIC,
            payload={"session_id": str(session_id)},
            dedupe_key=f"summary:{session_id}:{covered}:{boundary}",
        )
        is not None
    )


def summary_continue(*, session_id: uuid.UUID, covered: int) -> None:
    """Queue the next batch of a backlog (in the caller's transaction)."""
    outbox_enqueue(
        topic=SUMMARY_TOPIC,
        payload={"session_id": str(session_id)},
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


def session_summarise(*, session_id: uuid.UUID | str, port: LlmPort) -> str:
    """Fold one batch of messages that left the window into the summary; returns what happened."""
    sid = uuid.UUID(str(session_id))
    if not Session.objects.filter(pk=sid).exists():
        return "no_session"
    boundary = _window_boundary(sid)
    if boundary is None:
        return "nothing_to_do"
    try:
        existing, _ = SessionSummary.objects.get_or_create(session_id=sid)
    except IntegrityError:
        return "no_session"  # deleted just now
    covered = existing.covered_seq
    backlog = _outside_window(sid, covered, boundary, settings.SOMA.summary_batch_messages)
    if not backlog:
        return "nothing_to_do"
    events = _fitting(backlog, previous=existing.text)
    chain = model_chain(role=Role.SUMMARY)
    if not chain:
        return "no_model"
    request = ChatRequest(target=chain[0], messages=summary_messages(previous=existing.text, events=events))
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
        if row.covered_seq != covered:
            return "superseded"
        row.text = text
        row.covered_seq = events[-1].seq
        row.messages += len(events)
        row.model = answered_by.model
        row.updated_at = timezone.now()
        row.save()
        if len(events) < len(backlog) or len(backlog) == settings.SOMA.summary_batch_messages:
            summary_continue(session_id=sid, covered=row.covered_seq)
    return "summarised"
