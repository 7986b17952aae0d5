"""Which models a turn goes to: analysis, the escalation decision, the fallback chain, the record.

``turn_route`` analyses the user message locally, applies the escalation rules
and builds the ordered chain (escalation profiles first when escalating, then
the dialogue chain). ``TurnRoute.open`` streams one model call over the chain
from the current position; a fallback moves the position, so a later call of
the same turn (after a tool round) starts at the model that worked, and is
announced to the client as a second ``assistant.started`` carrying
``fallback: {from, to, reason, message}``. ``route_record`` is what the turn's
end keeps of the analysis, the decision and the failed attempts (``turn_analyses``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conversations.llm.fallback import Fallback, ResilientChatStream
from conversations.llm.port import ChatRequest, ChatStream, LlmPort, ModelTarget
from conversations.llm.resolve import Role, model_chain
from conversations.models import EventType
from conversations.turn.analysis import Analysis, analyse
from conversations.turn.claim import turn_emit
from conversations.turn.escalation import EscalationDecision, escalation_decide, escalation_rules
from conversations.turn.types import ClaimedTurn
from somaagent.metrics import metered_stream

log = logging.getLogger(__name__)


class MeteredLlm:
    """The LLM port with every call metered (time to first token, tokens, outcome per model)."""

    def __init__(self, port: LlmPort) -> None:
        self._port = port

    def open_stream(self, request: ChatRequest) -> ChatStream:
        return metered_stream(self._port.open_stream(request), model=request.target.model)


@dataclass
class TurnRoute:
    analysis: Analysis
    decision: EscalationDecision
    chain: list[ModelTarget]
    escalated: bool
    position: int = 0
    attempts: list[dict[str, Any]] = field(default_factory=list)
    fallbacks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def target(self) -> ModelTarget:
        return self.chain[self.position]

    @property
    def escalation(self) -> dict[str, Any] | None:
        """``assistant.final``'s ``escalation``: null when no rule asked for it."""
        if not self.decision.escalate:
            return None
        first = self.chain[0] if self.escalated and self.chain else None
        detail = self.decision.detail
        if not self.escalated:
            detail += "; no escalation profile is configured, so the dialogue model answered"
        return {
            "escalated": self.escalated,
            "reason": self.decision.reason,
            "detail": detail,
            "profile": first.label if first else None,
        }

    def open(
        self, port: LlmPort, request: ChatRequest, *, on_fallback: Callable[[Fallback], None] | None = None
    ) -> ResilientChatStream:
        """One model call from the current position of the chain, falling back along it."""

        def switched(switch: Fallback) -> None:
            self.position = self.chain.index(switch.target, self.position)
            self.fallbacks.append(switch.as_dict())
            if on_fallback is not None:
                on_fallback(switch)

        return ResilientChatStream(
            MeteredLlm(port), self.chain[self.position :], request, on_fallback=switched
        )

    def note_attempts(self, stream: ResilientChatStream) -> None:
        self.attempts.extend(stream.attempts.entries)


def turn_route(*, message: str, metadata: dict[str, Any] | None) -> TurnRoute:
    analysis = analyse(message)
    decision = escalation_decide(analysis=analysis, metadata=metadata, rules=escalation_rules())
    chain = model_chain(role=Role.ESCALATION if decision.escalate else Role.DIALOGUE)
    # Without an escalation profile the escalation chain is the dialogue chain.
    escalated = decision.escalate and bool(chain) and chain[0].role == Role.ESCALATION
    return TurnRoute(analysis=analysis, decision=decision, chain=chain, escalated=escalated)


def fallback_announce(*, claim: ClaimedTurn, switch: Fallback) -> None:
    """Tell the client another model takes over (nothing of the reply was sent yet)."""
    turn_emit(
        claim=claim,
        type=EventType.ASSISTANT_STARTED,
        data={
            "model": switch.target.model,
            "reply_to": str(claim.user_event_uuid),
            "restart": False,
            "fallback": switch.as_dict(),
        },
    )


def route_record(*, route: TurnRoute, answered: bool) -> dict[str, Any]:
    """The turn's analysis and routing as ``turn_analyses`` keeps them for the admin."""
    escalation = route.escalation or {}
    return {
        "intent": route.analysis.intent,
        "sentiment": route.analysis.sentiment,
        "tags": route.analysis.tags,
        "complexity": route.analysis.complexity,
        "chars": route.analysis.chars,
        "escalated": route.escalated,
        "escalation_reason": route.decision.reason,
        "escalation_detail": str(escalation.get("detail", ""))[:300],
        "profile": (route.target.label or route.target.model) if answered and route.chain else "",
        "attempts": route.attempts,
    }
