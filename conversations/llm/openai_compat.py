"""Remote LLM adapter: OpenAI-compatible ``POST {base}/chat/completions`` with SSE streaming."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import httpx
from django.conf import settings

from conversations.llm.port import ChatChunk, ChatRequest, LlmError, ToolCallDelta
from somaagent.process_local import PerProcess
from somaagent.retry import parse_retry_after

log = logging.getLogger(__name__)


def _new_client() -> httpx.Client:
    timeout = httpx.Timeout(
        connect=settings.SOMA.llm_connect_timeout,
        read=settings.SOMA.llm_read_timeout,
        write=10.0,
        pool=10.0,
    )
    # Every turn a worker runs at once may be streaming: one connection each.
    limits = httpx.Limits(
        max_connections=max(100, settings.SOMA.worker_concurrency), max_keepalive_connections=100
    )
    return httpx.Client(timeout=timeout, limits=limits)


_client = PerProcess(_new_client)


def http_client() -> httpx.Client:
    """One pooled client per process: building one costs an SSL context each time."""
    return _client.get()


class OpenAIChatStream:
    """Iterates chunks of one streamed completion; ``close`` interrupts it from any thread."""

    def __init__(self, request: ChatRequest) -> None:
        self._request = request
        self._response: httpx.Response | None = None
        self._closed = threading.Event()

    def _body(self) -> dict[str, Any]:
        target = self._request.target
        body: dict[str, Any] = {
            **target.extra,
            "model": target.model,
            "messages": self._request.messages,
            "temperature": target.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        limit = self._request.max_tokens
        if limit and "max_tokens" not in target.extra and "max_completion_tokens" not in target.extra:
            body["max_tokens"] = limit  # the reply never outgrows what its budget reserved
        if self._request.tools:
            body["tools"] = self._request.tools
            if self._request.tool_choice:
                body["tool_choice"] = self._request.tool_choice
        return body

    def __iter__(self) -> Iterator[ChatChunk]:
        target = self._request.target
        url = target.base_url.rstrip("/") + "/chat/completions"
        headers = {"Accept": "text/event-stream"}
        if target.api_key:
            headers["Authorization"] = f"Bearer {target.api_key}"
        try:
            with http_client().stream("POST", url, json=self._body(), headers=headers) as response:
                self._response = response
                if response.status_code >= 400:
                    response.read()
                    raise http_error(response)
                yield from self._chunks(response)
        except LlmError:
            raise
        except httpx.TimeoutException as exc:
            raise LlmError(
                "llm_timeout", f"The model did not answer in time ({exc.__class__.__name__}).", retryable=True
            ) from exc
        except httpx.ConnectError as exc:
            raise LlmError(
                "llm_unreachable", f"Could not connect to the model at {target.base_url}.", retryable=True
            ) from exc
        except (httpx.HTTPError, RuntimeError) as exc:
            if self._closed.is_set():
                return
            raise LlmError(
                "llm_stream_interrupted", f"The model's stream broke off: {exc!r}", retryable=True
            ) from exc

    def _chunks(self, response: httpx.Response) -> Iterator[ChatChunk]:
        done = False
        for line in response.iter_lines():
            if self._closed.is_set():
                return
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                done = True
                break
            try:
                doc = json.loads(data)
            except json.JSONDecodeError as exc:
                raise LlmError(
                    "llm_bad_response", "The model sent a chunk that is not JSON.", retryable=True
                ) from exc
            if "error" in doc:
                err = doc["error"] if isinstance(doc["error"], dict) else {"message": str(doc["error"])}
                raise LlmError("llm_error", str(err.get("message", "model error")), retryable=True)
            yield _parse_chunk(doc)
        if not done and not self._closed.is_set():
            raise LlmError(
                "llm_stream_interrupted", "The model's stream ended before it finished.", retryable=True
            )

    def close(self) -> None:
        self._closed.set()
        response = self._response
        if response is not None:
            try:
                response.close()
            except Exception:  # closing from another thread may race the reader
                log.debug("closing the model stream raised", exc_info=True)


def _parse_chunk(doc: dict[str, Any]) -> ChatChunk:
    chunk = ChatChunk()
    usage = doc.get("usage")
    if isinstance(usage, dict):
        chunk.usage = {
            "prompt_tokens": int(usage.get("prompt_tokens") or 0),
            "completion_tokens": int(usage.get("completion_tokens") or 0),
        }
    for choice in doc.get("choices") or []:
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if isinstance(content, str):
            chunk.text += content
        for call in delta.get("tool_calls") or []:
            fn = call.get("function") or {}
            chunk.tool_calls.append(
                ToolCallDelta(
                    index=int(call.get("index", 0)),
                    id=call.get("id"),
                    name=fn.get("name"),
                    arguments=fn.get("arguments") or "",
                )
            )
        if choice.get("finish_reason"):
            chunk.finish_reason = choice["finish_reason"]
    return chunk


def http_error(response: httpx.Response) -> LlmError:
    status = response.status_code
    try:
        detail = response.json().get("error", {})
        message = detail.get("message") if isinstance(detail, dict) else str(detail)
    except (ValueError, AttributeError):
        message = response.text[:200]
    message = f"The model endpoint answered HTTP {status}: {message or response.reason_phrase}"
    wait = parse_retry_after(response.headers.get("retry-after"))
    if status == 429:
        return LlmError("llm_rate_limited", message, retryable=True, status=status, retry_after=wait)
    if status >= 500:
        return LlmError("llm_unavailable", message, retryable=True, status=status, retry_after=wait)
    if status in (401, 403):
        return LlmError("llm_auth_failed", message, retryable=False, status=status)
    return LlmError("llm_rejected", message, retryable=False, status=status)


class OpenAICompatibleLlm:
    def open_stream(self, request: ChatRequest) -> OpenAIChatStream:
        return OpenAIChatStream(request)
