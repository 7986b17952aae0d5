"""One completion over a chain of models: retry a failing provider, then fall back to the next.

``ResilientChatStream`` is itself a ``ChatStream``: the turn iterates it like a
single model's stream. Before any output has arrived, a failure (connect
error, timeout, 5xx, 429, a stream that breaks off) is retried on the same
target with jittered exponential backoff — honouring ``Retry-After`` up to a
cap, beyond which waiting is pointless and it falls back at once — and then
the next target in the chain is tried; non-retryable failures (401/403, other
4xx) fall back without retrying. ``on_fallback`` is told of each switch so the
turn can tell the client. Once output has been yielded, a failure is raised as
is: the caller ends the turn with a partial reply instead of silently
restarting it. When every target has failed the last error is raised.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from django.conf import settings

from conversations.llm.port import ChatChunk, ChatRequest, ChatStream, LlmError, LlmPort, ModelTarget
from somaagent.db_hold import db_release
from somaagent.retry import backoff_delay

log = logging.getLogger(__name__)


BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 8.0


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of one model: ``SOMA_LLM_MAX_RETRIES``, backoff 0.5 s doubling to 8 s (jittered),
    a ``Retry-After`` waited for up to ``SOMA_LLM_RETRY_AFTER_MAX_SECONDS``."""

    max_retries: int = 2
    base_delay: float = BACKOFF_BASE_SECONDS
    max_delay: float = BACKOFF_MAX_SECONDS
    retry_after_cap: float = 30.0

    @classmethod
    def from_settings(cls) -> RetryPolicy:
        return cls(
            max_retries=settings.SOMA.llm_max_retries,
            retry_after_cap=settings.SOMA.llm_retry_after_max_seconds,
        )

    def delay(self, error: LlmError, retry: int) -> float | None:
        """Seconds to wait before retry number ``retry`` (0-based), or None: do not retry."""
        if not error.retryable or retry >= self.max_retries:
            return None
        if error.retry_after is not None:
            if error.retry_after > self.retry_after_cap:
                return None
            return max(0.0, error.retry_after)
        return backoff_delay(retry + 1, base=self.base_delay, cap=self.max_delay)


@dataclass(frozen=True)
class Fallback:
    """A switch from one target to the next, and the error that caused it."""

    source: ModelTarget
    target: ModelTarget
    error: LlmError

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.source.label or self.source.model,
            "to": self.target.label or self.target.model,
            "reason": self.error.code,
            "message": self.error.message,
        }


@dataclass
class AttemptLog:
    entries: list[dict[str, Any]] = field(default_factory=list)

    def add(self, target: ModelTarget, error: LlmError, *, retry_in: float | None) -> None:
        self.entries.append(
            {
                "target": target.label or target.model,
                "code": error.code,
                "status": error.status,
                "retry_in": None if retry_in is None else round(retry_in, 2),
            }
        )


class ResilientChatStream:
    def __init__(
        self,
        port: LlmPort,
        chain: list[ModelTarget],
        request: ChatRequest,
        *,
        policy: RetryPolicy | None = None,
        on_fallback: Callable[[Fallback], None] | None = None,
    ) -> None:
        if not chain:
            raise ValueError("a model chain needs at least one target")
        self._port = port
        self._chain = chain
        self._request = request
        self._policy = policy or RetryPolicy.from_settings()
        self._on_fallback = on_fallback
        self._closed = threading.Event()
        self._current: ChatStream | None = None
        self.target: ModelTarget = chain[0]
        self.attempts = AttemptLog()
        self.fallbacks: list[Fallback] = []

    def __iter__(self) -> Iterator[ChatChunk]:
        for index, target in enumerate(self._chain):
            self.target = target
            retry = 0
            while not self._closed.is_set():
                produced = False
                try:
                    for chunk in self._open(target):
                        produced = produced or bool(chunk.text or chunk.tool_calls)
                        yield chunk
                    return
                except LlmError as exc:
                    if produced or self._closed.is_set():
                        raise
                    delay = self._policy.delay(exc, retry)
                    self.attempts.add(target, exc, retry_in=delay)
                    log.warning(
                        "model call failed",
                        extra={"target": target.label, "code": exc.code, "retry_in": delay},
                    )
                    if delay is not None:
                        retry += 1
                        self._closed.wait(delay)
                        continue
                    if index + 1 == len(self._chain):
                        raise
                    switch = Fallback(source=target, target=self._chain[index + 1], error=exc)
                    self.fallbacks.append(switch)
                    if self._on_fallback is not None:
                        self._on_fallback(switch)
                    break
            if self._closed.is_set():
                return

    def _open(self, target: ModelTarget) -> ChatStream:
        stream = self._port.open_stream(replace(self._request, target=target))
        self._current = stream
        if self._closed.is_set():
            stream.close()
        return stream

    def close(self) -> None:
        self._closed.set()
        current = self._current
        if current is not None:
            current.close()


def model_answer(port: LlmPort, chain: list[ModelTarget], request: ChatRequest) -> tuple[str, ModelTarget]:
    """The whole answer of a background model call (a title, a summary) and the model that gave
    it, waited for with no database connection held: the wait lasts seconds and the pool is
    shared with the turns."""
    stream = ResilientChatStream(port, chain, request)
    db_release()
    text = "".join(chunk.text for chunk in stream)
    return text, stream.target
