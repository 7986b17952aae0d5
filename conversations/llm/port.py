"""The LLM port: what the conversation turn needs from a language model."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ModelTarget:
    """Where and how to call one model (a model profile, or the env default)."""

    base_url: str
    model: str
    api_key: str = ""
    temperature: float = 0.7
    extra: dict[str, Any] = field(default_factory=dict)
    profile_id: int | None = None
    label: str = ""
    role: str = ""


@dataclass(frozen=True)
class ChatRequest:
    target: ModelTarget
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | None = None  # e.g. "none": tools stay defined but the model must answer
    max_tokens: int | None = None  # sent unless the profile sets its own (max_tokens, max_completion_tokens)


@dataclass
class ToolCallDelta:
    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass
class ChatChunk:
    text: str = ""
    tool_calls: list[ToolCallDelta] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, int] | None = None


class LlmError(Exception):
    """A model call failed; ``retryable`` says whether trying again may help."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after


class ChatStream(Protocol):
    def __iter__(self) -> Iterator[ChatChunk]: ...

    def close(self) -> None:
        """Stop the stream; safe to call from another thread."""


class LlmPort(Protocol):
    def open_stream(self, request: ChatRequest) -> ChatStream: ...
