"""Turning one turn's SomaAgent events into OpenAI chat-completion chunks or a whole completion.

The session stream may carry other turns' events (a reply still running when
this message arrived); ``ReplyTracker`` keeps only this turn's: from its
``assistant.started`` (``reply_to`` = our user event) to its terminal event
(same ``reply_to``). A fallback's second ``assistant.started`` is transparent.
A ``restart`` (another worker took the turn over) drops the partial text when
nothing was sent yet; once text was streamed it cannot be taken back, so the
stream ends with an error the client can retry.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from conversations.openai_front.request import OpenAIError, error_payload
from somaagent.errors import BudgetExceeded, PolicyDenied, SomaError

TEXT, FINAL, ERROR, CANCELLED, RESTART = "text", "final", "error", "cancelled", "restart"

_ERROR_STATUS = {
    "policy_denied": 403,
    "no_model_configured": 503,
    "worker_lost": 503,
    "budget_unavailable": 503,
}


@dataclass(frozen=True)
class Step:
    kind: str
    text: str = ""
    data: dict[str, Any] = field(default_factory=dict)


class ReplyTracker:
    def __init__(self, reply_to: str) -> None:
        self.reply_to = reply_to
        self.started = False
        self.text: list[str] = []
        self.model = ""

    def feed(self, envelope: dict[str, Any]) -> Step | None:
        kind, data = envelope["type"], envelope.get("data") or {}
        ours = data.get("reply_to") == self.reply_to
        if kind == "assistant.started" and ours:
            self.model = str(data.get("model") or self.model)
            restart = self.started and bool(data.get("restart"))
            self.started = True
            if restart:
                return Step(RESTART)
            return None
        if kind == "assistant.delta" and self.started:
            text = str(data.get("text") or "")
            self.text.append(text)
            return Step(TEXT, text=text) if text else None
        if ours and kind == "assistant.final":
            return Step(FINAL, data=data)
        if ours and kind == "assistant.error":
            return Step(ERROR, data=data)
        if ours and kind == "assistant.cancelled":
            return Step(CANCELLED, data=data)
        return None

    def restart(self) -> None:
        self.text.clear()


def turn_error(data: dict[str, Any]) -> SomaError:
    """The OpenAI-shaped error for a turn that ended with ``assistant.error``."""
    code = str(data.get("code") or "error")
    message = str(data.get("message") or "The reply failed.")
    if code == "budget_exceeded":
        return BudgetExceeded(message, retry_after=int(data.get("retry_after") or 60))
    if code == "policy_denied":
        return PolicyDenied(message)
    return OpenAIError(message, status=_ERROR_STATUS.get(code, 502), code=code)


def usage_of(data: dict[str, Any]) -> dict[str, int]:
    usage = data.get("usage") or {}
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class ChunkWriter:
    """Builds the ``data:`` frames of one streamed completion."""

    def __init__(self, *, completion_id: str, model: str, include_usage: bool) -> None:
        self.completion_id = completion_id
        self.model = model
        self.include_usage = include_usage
        self.created = int(time.time())

    def _frame(self, doc: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(doc, separators=(",", ":")).encode() + b"\n\n"

    def _chunk_frame(self, choices: list[dict[str, Any]], **usage: Any) -> bytes:
        return self._frame(
            {
                "id": self.completion_id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "system_fingerprint": None,
                "choices": choices,
                **usage,
            }
        )

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return self._chunk_frame([choice], **({"usage": None} if self.include_usage else {}))

    def usage(self, usage: dict[str, int]) -> bytes:
        return self._chunk_frame([], usage=usage)

    def error(self, exc: SomaError) -> bytes:
        return self._frame(error_payload(exc))

    @staticmethod
    def done() -> bytes:
        return b"data: [DONE]\n\n"


def completion_body(
    *, completion_id: str, model: str, text: str, finish_reason: str, usage: dict[str, int]
) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage,
    }
