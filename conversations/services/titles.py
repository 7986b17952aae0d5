"""A chat's title: the shortened first message at once, then a short one the model proposes.

When ``message_accept`` creates a session its title is ``title_from_message``
(the first line, at most ``TITLE_CHARS`` characters, cut at a word boundary
with an ellipsis) and ``Session.title_automatic`` is set. When the session's
first reply is finished (``turn_end.turn_ended`` calls
``title_proposal_enqueue`` for ``assistant.final``) an outbox row in the same
transaction queues ``conversation.propose_title`` (queue ``default``, so it
never waits in front of user turns). The task asks the ``summary`` models
(falling back to the dialogue models) for a short title and stores it only if
the title is still the automatic one: a rename (``session_rename``, the admin)
clears the flag, so it is never overwritten. One proposal per session: the flag
is cleared whatever the model answered; without a model, or when it fails, the
shortened title stays. ``SOMA_TITLE_FROM_MODEL=0`` keeps the first words and
never sends them to a model.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import replace

from django.conf import settings

from conversations.llm.fallback import model_answer
from conversations.llm.port import ChatRequest, LlmError, LlmPort
from conversations.llm.resolve import Role, model_chain
from conversations.models import EventType, Session, SessionEvent
from somaagent.outbox import outbox_enqueue

log = logging.getLogger(__name__)

TITLE_TOPIC = "conversation.title"
TITLE_TASK = "conversation.propose_title"
TITLE_CHARS = 60
ELLIPSIS = "…"
EXCERPT_CHARS = 1500  # of the first message and reply sent to the model
TITLE_MAX_TOKENS = 24
INSTRUCTIONS = (
    "Write a title of at most six words for the conversation below: its topic, not a greeting. "
    "Answer with the title only: no quotes, no trailing punctuation, no prefix."
)
_SPACE = re.compile(r"\s+")
_PREFIX = re.compile(r"^(?:title|chat title|conversation title)\s*[:\-–]\s*", re.I)


def title_from_message(message: str) -> str:
    """The first non-empty line, whitespace collapsed, at most ``TITLE_CHARS`` characters: cut at
    the last word boundary that keeps at least half of it (else mid-word), with an ellipsis."""
    line = next((ln for ln in message.splitlines() if ln.strip()), "")
    text = _SPACE.sub(" ", line).strip()
    if len(text) <= TITLE_CHARS:
        return text
    room = TITLE_CHARS - len(ELLIPSIS)
    cut = text.rfind(" ", 0, room + 1)
    head = text[:cut] if cut >= room // 2 else text[:room]
    return head.rstrip(" ,;:.-–—") + ELLIPSIS


def title_clean(answer: str) -> str:
    """The model's answer as a title: its first line, without quotes, a "Title:" prefix or a final stop."""
    text = title_from_message(_PREFIX.sub("", answer.strip()))
    text = text.strip().strip("\"'“”‘’*`#").strip()
    return text.rstrip(".!;:,").strip()


def title_proposal_enqueue(*, session_id: uuid.UUID, title_automatic: bool) -> bool:
    """After a finished reply: queue the model's proposal while the title is still the automatic
    one (inside the finishing transaction; once per session by its dedupe key)."""
    if not title_automatic or not settings.SOMA.title_from_model:
        return False
    return (
        outbox_enqueue(
            topic=TITLE_TOPIC,
            payload={"session_id": str(session_id)},
            dedupe_key=f"title:{session_id}",
        )
        is not None
    )


def _first_text(session_id: uuid.UUID, type: str) -> str:
    payload = (
        SessionEvent.objects.filter(session_id=session_id, type=type)
        .order_by("seq")
        .values_list("payload", flat=True)
        .first()
    )
    return str((payload or {}).get("message", ""))[:EXCERPT_CHARS]


def title_messages(*, message: str, reply: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "user", "content": f"User: {message}\n\nAssistant: {reply}"},
    ]


def _ask(port: LlmPort, *, message: str, reply: str) -> str | None:
    chain = [
        replace(t, temperature=0.2, extra={**t.extra, "max_tokens": TITLE_MAX_TOKENS})
        for t in model_chain(role=Role.SUMMARY)
    ]
    if not chain:
        return None
    request = ChatRequest(target=chain[0], messages=title_messages(message=message, reply=reply))
    return model_answer(port, chain, request)[0]


def session_title_propose(*, session_id: uuid.UUID | str, port: LlmPort) -> str:
    """Ask the model for a title and store it if the title is still automatic; returns what happened."""
    sid = uuid.UUID(str(session_id))
    if not Session.objects.filter(pk=sid, title_automatic=True).exists():
        return "kept"  # renamed, already proposed, or deleted
    outcome, title = "no_title", ""
    try:
        answer = _ask(
            port,
            message=_first_text(sid, EventType.USER_MESSAGE),
            reply=_first_text(sid, EventType.ASSISTANT_FINAL),
        )
    except LlmError as exc:
        log.warning("no title from the model; the chat keeps its first words", extra={"code": exc.code})
        outcome = "model_failed"
    else:
        if answer is None:
            outcome = "no_model"
        else:
            title = title_clean(answer)
            outcome = "titled" if title else outcome
    updates: dict[str, object] = {"title_automatic": False}
    if title:
        updates["title"] = title
    if not Session.objects.filter(pk=sid, title_automatic=True).update(**updates):
        return "kept"  # renamed while the model was writing
    return outcome
