"""Running one turn: claim it, stream the model's reply, end it with one terminal event."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.conf import settings

from conversations.llm.fallback import Fallback
from conversations.llm.openai_compat import OpenAICompatibleLlm
from conversations.llm.port import ChatRequest, LlmError, LlmPort, ModelTarget, ToolCallDelta
from conversations.llm.resolve import NO_MODEL_MESSAGE
from conversations.models import EventType
from conversations.services.summary import SummaryDue
from conversations.turn.admission import completion_reserve, round_admit, turn_admit
from conversations.turn.approvals import AWAITING_APPROVAL, Parked
from conversations.turn.claim import turn_claim
from conversations.turn.end import turn_ended
from conversations.turn.finish import turn_finish
from conversations.turn.prompt import PromptHistory, prompt_window, turn_prompt
from conversations.turn.publisher import DeltaPublisher
from conversations.turn.route import (
    TurnRoute,
    fallback_announce,
    route_record,
    turn_route,
)
from conversations.turn.tool_loop import generate_with_tools
from conversations.turn.types import ClaimedTurn, LeaseLost
from conversations.turn.watch import CANCELLED, LEASE_LOST, TIMED_OUT, Watched, turn_watch
from somaagent.db_hold import db_release
from somaagent.tokens import estimate_tokens, tokens_of_chars

log = logging.getLogger(__name__)

_llm: LlmPort = OpenAICompatibleLlm()


def llm_port() -> LlmPort:
    return _llm


@dataclass
class Generation:
    text: list[str] = field(default_factory=list)
    usage: dict[str, int] | None = None
    error: LlmError | None = None
    stop_reason: str | None = None
    tool_calls: list[ToolCallDelta] = field(default_factory=list)
    deltas_sent: int = 0

    @property
    def message(self) -> str:
        return "".join(self.text)


def turn_run(*, turn_id: uuid.UUID | str, owner: str) -> None:
    """The conversation task's body; idempotent, so any redelivery is harmless."""
    routes: list[TurnRoute] = []
    windows: list[PromptHistory] = []

    def start(claim: ClaimedTurn) -> str | None:
        # Analysis, escalation and the fallback chain decide the first model, which the claim's
        # assistant.started names; pure computation over cached rules and profiles. The prompt's
        # history window is read here too, in the claim's transaction, before its writes.
        routes.append(turn_route(message=claim.user_message, metadata=claim.user_metadata))
        if not routes[-1].chain:
            return None
        if claim.resume is None:  # a parked turn going on has its messages already
            windows.append(prompt_window(claim))
        return routes[-1].target.model

    claim = turn_claim(turn_id=turn_id, owner=owner, ended=turn_ended, start=start)
    if claim is None:
        return
    route = routes[-1]
    watch = turn_watch()
    watched = watch.watch(claim)
    try:
        _run_claimed(claim, route, watched, windows[-1] if windows else PromptHistory(events=[], summary=""))
    except LeaseLost:
        log.warning("turn taken over by another worker; stopping", extra={"turn_id": str(turn_id)})
    except Exception as exc:
        log.exception("turn failed unexpectedly", extra={"turn_id": str(turn_id)})
        try:
            _end(
                claim,
                route,
                type=EventType.ASSISTANT_ERROR,
                data={
                    "code": "internal_error",
                    "message": f"The reply failed: {exc.__class__.__name__}.",
                    "retryable": True,
                },
            )
        except LeaseLost:
            pass
    finally:
        watch.unwatch(watched)


def _end(
    claim: ClaimedTurn,
    route: TurnRoute,
    *,
    type: str,
    data: dict[str, Any],
    answered: bool = False,
    model: str = "",
    usage: dict[str, int] | None = None,
    summary_due: SummaryDue | None = None,
) -> None:
    turn_finish(
        claim=claim,
        type=type,
        data=data,
        ended=turn_ended,
        model=model,
        usage=usage,
        analysis=route_record(route=route, answered=answered),
        summary_due=summary_due,
    )


def _run_claimed(claim: ClaimedTurn, route: TurnRoute, watched: Watched, history: PromptHistory) -> None:
    if not route.chain:
        _end(
            claim,
            route,
            type=EventType.ASSISTANT_ERROR,
            data={"code": "no_model_configured", "message": NO_MODEL_MESSAGE, "retryable": False},
        )
        return
    resume: tuple[Parked, Generation] | None = None
    if claim.resume is None:
        prompt = turn_prompt(claim=claim, history=history)
        messages = prompt.messages
        refusal = turn_admit(claim=claim, messages=messages, target=route.target)  # policy + budget
        if refusal is not None:
            _end(claim, route, type=EventType.ASSISTANT_ERROR, data=refusal)
            return
        memory, summary_due = prompt.memories.references, history.summary_due
        citations = prompt.documents.citations
    else:  # going on after approvals, from where the turn was parked (conversations/turn/approvals.py)
        parked = Parked.from_json(claim.resume)
        messages, memory, summary_due = parked.messages, parked.memory, parked.summary_run()
        citations = parked.citations
        resume = (
            parked,
            Generation(text=list(parked.text), usage=parked.usage, deltas_sent=parked.deltas_sent),
        )
    generation = generate_with_tools(
        claim=claim,
        target=route.target,
        messages=messages,
        stream=partial(_stream, route=route, watched=watched),
        watched=watched,
        admit_round=lambda more: round_admit(claim=claim, messages=more, target=route.target),
        resume=resume,
        prompt_facts=(memory, summary_due, citations),
    )
    target = route.target
    answered = generation.error is None
    if generation.stop_reason == AWAITING_APPROVAL:
        return  # parked: no worker holds it until its approvals are answered
    if generation.stop_reason == LEASE_LOST:
        raise LeaseLost(str(claim.turn_id))
    if generation.stop_reason == CANCELLED:
        _end(
            claim,
            route,
            type=EventType.ASSISTANT_CANCELLED,
            data={"partial": generation.message},
            answered=answered,
        )
        return
    if generation.stop_reason == TIMED_OUT:
        limit = settings.SOMA.turn_time_limit_seconds
        generation.error = LlmError(
            "turn_timeout", f"The reply took longer than the limit of {limit:g} s.", retryable=True
        )
    if generation.error is not None:
        err = generation.error
        data: dict[str, object] = {"code": err.code, "message": err.message, "retryable": err.retryable}
        if err.retry_after is not None:
            data["retry_after"] = err.retry_after
        if generation.text:
            data["partial"] = generation.message
        _end(claim, route, type=EventType.ASSISTANT_ERROR, data=data, model=target.model)
        return
    usage = generation.usage or {
        "prompt_tokens": tokens_of_chars(sum(len(str(m.get("content", ""))) for m in messages)),
        "completion_tokens": estimate_tokens(generation.message),
    }
    _end(
        claim,
        route,
        type=EventType.ASSISTANT_FINAL,
        data={
            "message": generation.message,
            "model": target.model,
            "usage": usage,
            "analysis": route.analysis.as_dict(),
            "escalation": route.escalation,
            "memory": memory,
            "citations": citations,
        },
        answered=True,
        model=target.model,
        usage=usage,
        summary_due=summary_due,
    )


def _stream(
    claim: ClaimedTurn,
    target: ModelTarget,
    messages: list[dict[str, object]],
    *,
    route: TurnRoute,
    watched: Watched,
    tools: list[dict[str, object]] | None = None,
    tool_choice: str | None = None,
    first_index: int = 0,
) -> Generation:
    """One model round. The route decides the model (``target`` is where the turn began): it starts
    at the model that answered the last round; a call that fails before any output is retried
    (bounded, jittered, honouring Retry-After), then falls back along the chain."""
    generation = Generation()
    request = ChatRequest(
        target=route.target,
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        max_tokens=completion_reserve(route.target),  # what admission reserved for the reply
    )

    def on_fallback(switch: Fallback) -> None:
        fallback_announce(claim=claim, switch=switch)
        db_release()

    stream = route.open(llm_port(), request, on_fallback=on_fallback)
    publisher = DeltaPublisher(watched, first_index=first_index)
    forget = watched.on_stop(stream.close)
    db_release()  # waiting on the model holds no database connection
    try:
        for chunk in stream:
            if publisher.stop_reason:
                break
            if chunk.text:
                generation.text.append(chunk.text)
                publisher.add(chunk.text)
            if chunk.usage:
                generation.usage = chunk.usage
            generation.tool_calls.extend(chunk.tool_calls)
    except LlmError as exc:
        if not publisher.stop_reason:
            generation.error = exc
    finally:
        forget()
        publisher.finish()
        route.note_attempts(stream)
    generation.stop_reason = publisher.stop_reason
    generation.deltas_sent = publisher.deltas_sent
    return generation
