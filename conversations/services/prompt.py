"""The messages sent to the model for one turn: persona, a bounded history window, the message."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings

from conversations.models import EventType, SessionEvent
from conversations.selectors import session_history_window
from conversations.services.turns import ClaimedTurn
from somaagent.models import Persona

if TYPE_CHECKING:
    from memory.services.recall import TurnMemories

DEFAULT_SYSTEM_PROMPT = "You are SomaAgent, a helpful assistant. Answer clearly and concisely."


def _content_of(event: SessionEvent) -> str:
    key = "message"
    return str(event.payload.get(key, ""))


def build_messages(*, claim: ClaimedTurn, memories: TurnMemories | None = None) -> list[dict[str, Any]]:
    system = DEFAULT_SYSTEM_PROMPT
    if claim.persona_id:
        persona = Persona.objects.filter(pk=claim.persona_id).only("system_prompt").first()
        if persona and persona.system_prompt:
            system = persona.system_prompt
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    if memories is not None and memories.message:
        messages.append(memories.message)
    window = session_history_window(
        session_id=claim.session_id,
        before_seq=claim.user_seq,
        limit=settings.SOMA.history_window_events,
    )
    for event in window:
        role = "user" if event.type == EventType.USER_MESSAGE else "assistant"
        messages.append({"role": role, "content": _content_of(event)})
    messages.append({"role": "user", "content": claim.user_message})
    return messages
