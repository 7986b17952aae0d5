"""Running one turn: claim it, stream the model's reply, end it with one terminal event."""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field

from conversations.analysis import analyse
from conversations.llm.openai_compat import OpenAICompatibleLlm
from conversations.llm.port import ChatRequest, ChatStream, LlmError, LlmPort, ModelTarget, ToolCallDelta
from conversations.llm.resolve import NO_MODEL_MESSAGE, model_targets
from conversations.llm.retry import llm_retry_delay
from conversations.models import EventType
from conversations.services.admission import turn_admit
from conversations.services.prompt import build_messages
from conversations.services.publisher import CANCELLED, LEASE_LOST, DeltaPublisher
from conversations.services.turns import ClaimedTurn, LeaseLost, turn_claim, turn_finish
from memory.services.recall import turn_memories
from somaagent.metrics import metered_stream
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
    targets = model_targets()
    # With a model to call, the claim writes assistant.started in its own transaction.
    claim = turn_claim(turn_id=turn_id, owner=owner, start_model=targets[0].model if targets else None)
    if claim is None:
        return
    try:
        _run_claimed(claim, targets)
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


def _run_claimed(claim: ClaimedTurn, targets: list[ModelTarget]) -> None:
    if not targets:
        turn_finish(
            claim=claim,
            type=EventType.ASSISTANT_ERROR,
            data={"code": "no_model_configured", "message": NO_MODEL_MESSAGE, "retryable": False},
        )
        return
    target = targets[0]
    memories = turn_memories(claim=claim, query=claim.user_message)
    messages = build_messages(claim=claim, memories=memories)
    refusal = turn_admit(claim=claim, messages=messages, target=target)  # policy + budget reservation
    if refusal is not None:
        turn_finish(claim=claim, type=EventType.ASSISTANT_ERROR, data=refusal)
        return
    generation = generate_with_tools(claim=claim, target=target, messages=messages, stream=_stream)
    if generation.stop_reason == LEASE_LOST:
        raise LeaseLost(str(claim.turn_id))
    if generation.stop_reason == CANCELLED:
        turn_finish(claim=claim, type=EventType.ASSISTANT_CANCELLED, data={"partial": generation.message})
        return
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
            "analysis": analyse(claim.user_message).as_dict(),
            "escalation": None,
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
    tools: list[dict[str, object]] | None = None,
    tool_choice: str | None = None,
    first_index: int = 0,
) -> Generation:
    """One model round; a call that fails before any text is retried (bounded, jittered)."""
    generation = Generation()
    request = ChatRequest(target=target, messages=messages, tools=tools, tool_choice=tool_choice)
    stopped = threading.Event()
    current: list[ChatStream] = []

    def stop() -> None:  # from the publisher's thread: cancel or lease lost
        stopped.set()
        if current:
            current[-1].close()

    publisher = DeltaPublisher(claim, on_stop=stop, first_index=first_index)
    publisher.start()
    retries = 0
    try:
        while not stopped.is_set():
            stream = metered_stream(llm_port().open_stream(request), model=target.model)
            current.append(stream)
            if stopped.is_set():
                break
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
                break
            except LlmError as exc:
                if publisher.stop_reason:
                    break
                retryable_now = not generation.tool_calls
                delay = llm_retry_delay(exc, retries_done=retries, text_received=bool(generation.text))
                if delay is None or not retryable_now:
                    generation.error = exc
                    break
                retries += 1
                log.warning(
                    "model call failed; trying again",
                    extra={"turn_id": str(claim.turn_id), "code": exc.code, "retry": retries, "delay": delay},
                )
                stopped.wait(delay)
    finally:
        publisher.finish()
    generation.stop_reason = publisher.stop_reason
    generation.deltas_sent = publisher.deltas_sent
    return generation
