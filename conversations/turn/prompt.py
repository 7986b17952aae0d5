"""The messages sent to the model for one turn: persona, memories, summary, a bounded window, the message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from conversations.models import EventType, SessionEvent
from conversations.selectors import session_history_window, summary_on_branch
from conversations.services.summary import SummaryDue, summary_due, summary_reach
from conversations.turn.branch_memories import branch_filter
from conversations.turn.context_window import context_fit
from conversations.turn.types import ClaimedTurn
from documents.retrieval import TurnDocuments, turn_documents
from memory.services.recall import TurnMemories, turn_memories
from somaagent.models import Persona
from somaagent.versioned import config_cache

# What follows the window's messages on the turn's branch once it has replied: its message and reply.
TURN_MESSAGES = 2

DEFAULT_SYSTEM_PROMPT = "You are SomaAgent, a helpful assistant. Answer clearly and concisely."


def _content_of(event: SessionEvent) -> str:
    key = "message"
    return str(event.payload.get(key, ""))


def _persona_prompt(persona_id: Any) -> str:
    return str(Persona.objects.filter(pk=persona_id).values_list("system_prompt", flat=True).first() or "")


# Read by every turn of a persona: once per configuration version (the admin announces changes).
_prompts = config_cache("persona_prompts", _persona_prompt)


@dataclass(frozen=True)
class TurnPrompt:
    messages: list[dict[str, Any]]
    memories: TurnMemories
    documents: TurnDocuments


@dataclass(frozen=True)
class PromptHistory:
    events: list[SessionEvent]  # the history window, oldest first
    summary: str  # the running summary of older messages, if it is of this branch
    summary_due: SummaryDue | None = None  # a summary run is due once the turn has replied


def prompt_window(claim: ClaimedTurn) -> PromptHistory:
    """The history of the turn's prompt: the messages before the turn's own on its branch, the
    summary if it summarises that branch, and whether a summary run will be due when the turn
    has replied; one read (two in a session with branches, whose summary may be another
    branch's), which the runner makes inside the claim's transaction. The walk reaches the
    messages just before the window too, which is all ``summary_due`` needs: the turn's end
    reads nothing more."""
    limit = settings.SOMA.history_window_events
    walked = session_history_window(
        session_id=claim.session_id, before=claim.user_parent_id, limit=summary_reach() - TURN_MESSAGES
    )
    summary, covered = claim.summary, claim.summary_covered
    if covered and claim.session_branched and claim.user_parent_id is not None:
        last = summary_on_branch(session_id=claim.session_id, leaf=claim.user_parent_id, covered_seq=covered)
        if last is None or last != claim.summary_event_id:
            summary, covered = "", 0  # another branch's summary
    return PromptHistory(
        events=walked[max(0, len(walked) - limit) :],
        summary=summary,
        summary_due=summary_due([e.seq for e in walked], covered=covered, newer=TURN_MESSAGES),
    )


def turn_prompt(*, claim: ClaimedTurn, history: PromptHistory) -> TurnPrompt:
    """The prompt of one turn: persona, recalled memories, summary, the history window
    (``prompt_window``) trimmed to the context budget, the message. Reads: the memory search and
    the document search (excerpts the model is told to cite; fail-soft, documents.retrieval)."""
    window = history.events
    memories = turn_memories(
        tenant_id=claim.tenant_id,
        namespace=claim.memory_namespace,
        query=claim.user_message,
        exclude={str(e.event_id) for e in window} | {str(claim.user_event_uuid)},
        turn_id=claim.turn_id,
        # Memory follows the branch: not what other branches said (conversations.turn.branch_memories).
        allowed=branch_filter(session_id=claim.session_id, leaf=claim.user_parent_id),
    )
    documents = turn_documents(
        tenant_id=claim.tenant_id,
        persona_id=claim.persona_id,
        session_id=claim.session_id,
        owner_id=claim.session_owner_id,
        query=claim.user_message,
        turn_id=claim.turn_id,
    )
    system = (_prompts.get(str(claim.persona_id)) if claim.persona_id else "") or DEFAULT_SYSTEM_PROMPT
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    if memories.message:
        messages.append(memories.message)
    if documents.message:
        messages.append(documents.message)
    for event in window:
        role = "user" if event.type == EventType.USER_MESSAGE else "assistant"
        messages.append({"role": role, "content": _content_of(event)})
    messages.append({"role": "user", "content": claim.user_message})
    return TurnPrompt(
        messages=context_fit(messages=messages, summary=history.summary),
        memories=memories,
        documents=documents,
    )
