"""Small functions the rest of the code calls to record what happened."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from django.db import transaction

from somaagent.metrics import registry as m

T = TypeVar("T")


def http_observed(*, route: str, method: str, status: int, seconds: float) -> None:
    m.HTTP_DURATION.labels(route, method, str(status)).observe(seconds)


def budget_rejected(*, tenant: object, stage: str) -> None:
    """``stage``: ``gateway`` (429 at accept) or ``turn`` (``budget_exceeded`` mid-turn)."""
    m.BUDGET_REJECTIONS.labels(str(tenant), stage).inc()


_OUTCOME = {"assistant.final": "final", "assistant.error": "error", "assistant.cancelled": "cancelled"}


def turn_finished(*, tenant_id: object, event_type: str, code: str = "") -> None:
    """A turn ended (``code``: the error's); counted once its transaction commits."""
    outcome = _OUTCOME.get(event_type, event_type)

    def record() -> None:
        m.TURNS_FINISHED.labels(outcome, code).inc()
        if code == "budget_exceeded":
            budget_rejected(tenant=tenant_id, stage="turn")

    transaction.on_commit(record)


def policy_denied(*, tenant: object, action: str) -> None:
    m.POLICY_DENIALS.labels(str(tenant), action).inc()


def housekeeping_pruned(*, kind: str, count: int) -> None:
    if count:
        m.HOUSEKEEPING_PRUNED.labels(kind).inc(count)


@contextmanager
def stream_tracked(transport: str) -> Iterator[None]:
    """Counts a stream client as active while the block runs (WebSocket consumers)."""
    m.STREAMS_OPENED.labels(transport).inc()
    gauge = m.ACTIVE_STREAMS.labels(transport)
    gauge.inc()
    try:
        yield
    finally:
        gauge.dec()


async def track_stream(transport: str, frames: AsyncIterator[T]) -> AsyncIterator[T]:
    """Wraps an async iterator of stream frames (SSE) so the client counts as active."""
    with stream_tracked(transport):
        async for frame in frames:
            yield frame


class MeteredStream:
    """Wraps a model stream (the LLM port's ``ChatStream``): first-token time, tokens per second."""

    def __init__(self, stream: Any, *, model: str) -> None:
        self._stream = stream
        self.model = model or "unknown"
        self.opened = time.perf_counter()
        self.first: float | None = None
        self.tokens = 0

    def __iter__(self) -> Iterator[Any]:
        outcome = "stopped"
        completion_tokens: int | None = None
        try:
            for chunk in self._stream:
                if chunk.text:
                    if self.first is None:
                        self.first = time.perf_counter()
                        m.LLM_TTFT.labels(self.model).observe(self.first - self.opened)
                    self.tokens += 1
                if chunk.usage:
                    completion_tokens = chunk.usage.get("completion_tokens")
                yield chunk
            outcome = "ok"
        except Exception:
            outcome = "error"
            raise
        finally:
            self._finish(outcome, completion_tokens)

    def _finish(self, outcome: str, completion_tokens: int | None) -> None:
        m.LLM_STREAMS.labels(self.model, outcome).inc()
        tokens = completion_tokens if completion_tokens else self.tokens
        if tokens:
            m.LLM_TOKENS.labels(self.model).inc(tokens)
        if self.first is not None and outcome == "ok":
            elapsed = time.perf_counter() - self.first
            if elapsed > 0 and tokens > 1:
                m.LLM_TPS.labels(self.model).observe(tokens / elapsed)

    def close(self) -> None:
        self._stream.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def metered_stream(stream: T, *, model: str) -> T:
    """``stream = metered_stream(port.open_stream(request), model=target.model)``."""
    return MeteredStream(stream, model=model)  # type: ignore[return-value]
