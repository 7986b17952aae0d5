"""Which models a turn goes to: analysis, the escalation decision, the fallback chain, the record.

``turn_route`` analyses the user message locally, applies the escalation rules
and builds the ordered chain (escalation profiles first when escalating, then
the dialogue chain). ``TurnRoute.open`` streams one model call over the chain
from the current position; a fallback moves the position, so a later call of
the same turn (after a tool round) starts at the model that worked, and is
announced to the client as a second ``assistant.started`` carrying
``fallback: {from, to, reason, message}``. ``turn_route_record`` keeps the
analysis, the decision and the failed attempts per turn (``turn_analyses``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError

from conversations.analysis import Analysis, analyse
from conversations.escalation import EscalationDecision, escalation_decide, escalation_rules
from conversations.llm.fallback import Fallback, ResilientChatStream
from conversations.llm.port import ChatRequest, ChatStream, LlmPort, ModelTarget
from conversations.llm.resolve import Role, model_chain
from conversations.models import EventType, Turn, TurnAnalysis
from conversations.services.turns import ClaimedTurn, turn_emit
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


def turn_route_of(*, turn_id: Any) -> TurnRoute:
    """The route of a turn from its user message (an empty message if the turn is gone)."""
    payload = Turn.objects.filter(pk=turn_id).values_list("user_event__payload", flat=True).first() or {}
    metadata = payload.get("metadata")
    return turn_route(
        message=str(payload.get("message", "")), metadata=metadata if isinstance(metadata, dict) else None
    )


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


def turn_route_record(*, claim: ClaimedTurn, route: TurnRoute, answered: bool) -> None:
    """Store (or update, on a restarted turn) the turn's analysis and routing for admin."""
    escalation = route.escalation or {}
    fields = {
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
    try:
        # One INSERT … ON CONFLICT DO UPDATE (update_or_create takes six statements).
        TurnAnalysis.objects.bulk_create(
            [TurnAnalysis(turn_id=claim.turn_id, **fields)],
            update_conflicts=True,
            unique_fields=["turn"],
            update_fields=list(fields),
        )
    except IntegrityError:
        log.info("turn gone before its analysis was stored", extra={"turn_id": str(claim.turn_id)})
