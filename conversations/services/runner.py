"""Running one turn: claim it, stream the model's reply, end it with one terminal event."""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field

from conversations.analysis import analyse
from conversations.llm.openai_compat import OpenAICompatibleLlm
from conversations.llm.port import ChatRequest, ChatStream, LlmError, LlmPort, ModelTarget
from conversations.llm.resolve import NO_MODEL_MESSAGE, model_targets
from conversations.llm.retry import llm_retry_delay
from conversations.models import EventType
from conversations.services.prompt import build_messages
from conversations.services.publisher import CANCELLED, LEASE_LOST, DeltaPublisher
from conversations.services.turns import ClaimedTurn, LeaseLost, turn_claim, turn_finish

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
    messages = build_messages(claim=claim)
    generation = _stream(claim, target, messages)
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
        },
        model=target.model,
        usage=usage,
    )


def _stream(claim: ClaimedTurn, target: ModelTarget, messages: list[dict[str, object]]) -> Generation:
    """Stream the reply; a call that fails before any text is retried (bounded, jittered)."""
    generation = Generation()
    stopped = threading.Event()
    current: list[ChatStream] = []

    def stop() -> None:  # from the publisher's thread: cancel or lease lost
        stopped.set()
        if current:
            current[-1].close()

    publisher = DeltaPublisher(claim, on_stop=stop)
    publisher.start()
    retries = 0
    try:
        while not stopped.is_set():
            stream = llm_port().open_stream(ChatRequest(target=target, messages=messages))
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
                break
            except LlmError as exc:
                if publisher.stop_reason:
                    break
                delay = llm_retry_delay(exc, retries_done=retries, text_received=bool(generation.text))
                if delay is None:
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
    return generation
