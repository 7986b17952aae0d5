"""Running one turn: claim it, stream the model's reply, end it with one terminal event."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from functools import partial

from django.conf import settings

from conversations.llm.fallback import Fallback
from conversations.llm.openai_compat import OpenAICompatibleLlm
from conversations.llm.port import ChatRequest, LlmError, LlmPort, ModelTarget, ToolCallDelta
from conversations.llm.resolve import NO_MODEL_MESSAGE
from conversations.models import EventType
from conversations.services.admission import turn_admit
from conversations.services.context import context_fit, session_summary_text
from conversations.services.prompt import build_messages
from conversations.services.publisher import DeltaPublisher
from conversations.services.routing import (
    TurnRoute,
    fallback_announce,
    turn_route_of,
    turn_route_record,
)
from conversations.services.turn_watch import CANCELLED, LEASE_LOST, TIMED_OUT, Watched, turn_watch
from conversations.services.turns import ClaimedTurn, LeaseLost, turn_claim, turn_finish
from memory.services.recall import turn_memories
from somaagent.db_hold import db_release
from tools.loop import generate_with_tools

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
    # Analysis, escalation and the fallback chain (conversations.services.routing) decide the
    # first model before the claim, which writes assistant.started in its own transaction.
    route = turn_route_of(turn_id=turn_id)
    claim = turn_claim(turn_id=turn_id, owner=owner, start_model=route.target.model if route.chain else None)
    if claim is None:
        return
    watch = turn_watch()
    watched = watch.watch(claim)
    try:
        _run_claimed(claim, route, watched)
    except LeaseLost:
        log.warning("turn taken over by another worker; stopping", extra={"turn_id": str(turn_id)})
    except Exception as exc:
        log.exception("turn failed unexpectedly", extra={"turn_id": str(turn_id)})
        try:
            turn_finish(
                claim=claim,
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


def _run_claimed(claim: ClaimedTurn, route: TurnRoute, watched: Watched) -> None:
    if not route.chain:
        turn_route_record(claim=claim, route=route, answered=False)
        turn_finish(
            claim=claim,
            type=EventType.ASSISTANT_ERROR,
            data={"code": "no_model_configured", "message": NO_MODEL_MESSAGE, "retryable": False},
        )
        return
    memories = turn_memories(claim=claim, query=claim.user_message)
    # The history window trimmed to the context budget, the session summary in place of older turns.
    summary = session_summary_text(session_id=claim.session_id)
    messages = context_fit(messages=build_messages(claim=claim, memories=memories), summary=summary)
    refusal = turn_admit(claim=claim, messages=messages, target=route.target)  # policy + budget reservation
    if refusal is not None:
        turn_route_record(claim=claim, route=route, answered=False)
        turn_finish(claim=claim, type=EventType.ASSISTANT_ERROR, data=refusal)
        return
    generation = generate_with_tools(
        claim=claim,
        target=route.target,
        messages=messages,
        stream=partial(_stream, route=route, watched=watched),
        watched=watched,
    )
    target = route.target
    turn_route_record(claim=claim, route=route, answered=generation.error is None)
    if generation.stop_reason == LEASE_LOST:
        raise LeaseLost(str(claim.turn_id))
    if generation.stop_reason == CANCELLED:
        turn_finish(claim=claim, type=EventType.ASSISTANT_CANCELLED, data={"partial": generation.message})
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
        turn_finish(claim=claim, type=EventType.ASSISTANT_ERROR, data=data, model=target.model)
        return
    usage = generation.usage or {
        "prompt_tokens": sum(len(str(m.get("content", ""))) for m in messages) // 4,
        "completion_tokens": len(generation.message) // 4,
    }
    turn_finish(
        claim=claim,
        type=EventType.ASSISTANT_FINAL,
        data={
            "message": generation.message,
            "model": target.model,
            "usage": usage,
            "analysis": route.analysis.as_dict(),
            "escalation": route.escalation,
            "memory": memories.references,
        },
        model=target.model,
        usage=usage,
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
    request = ChatRequest(target=route.target, messages=messages, tools=tools, tool_choice=tool_choice)

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
