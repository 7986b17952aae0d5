"""Parsing an OpenAI chat-completions request into what SomaAgent needs, and OpenAI's error shape."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.http import JsonResponse

from somaagent.errors import (
    NotFound,
    PayloadTooLarge,
    RateLimited,
    SomaError,
    Unauthenticated,
    ValidationFailed,
)
from somaagent.json_input import json_loads

MODEL_ALIAS = "somaagent"
SESSION_HEADER = "X-Soma-Session-Id"
TURN_HEADER = "X-Soma-Turn-Id"
MAX_USER_CHARS = 255

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


class OpenAIError(SomaError):
    """An error with an explicit status, for cases the domain hierarchy does not name."""

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message, code=code)
        self.status_code = status


def error_payload(exc: SomaError) -> dict[str, Any]:
    return {
        "error": {
            "message": exc.message,
            "type": _TYPES.get(exc.status_code, "server_error"),
            "code": exc.code,
            "param": exc.details.get("param") if isinstance(exc.details, dict) else None,
        }
    }


def error_response(exc: SomaError) -> JsonResponse:
    response = JsonResponse(error_payload(exc), status=exc.status_code)
    if isinstance(exc, RateLimited):
        response["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthenticated):
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


@dataclass(frozen=True)
class CompletionRequest:
    model: str
    persona_name: str | None
    message: str
    stream: bool
    include_usage: bool
    user: str | None
    metadata: dict[str, Any] = field(default_factory=dict)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict):
                raise ValidationFailed("Content parts must be objects.", details={"param": "messages"})
            if part.get("type") == "text":
                parts.append(str(part.get("text", "")))
            else:
                raise ValidationFailed(
                    f"Content parts of type {part.get('type')!r} are not supported; send text.",
                    details={"param": "messages"},
                )
        return "\n".join(parts)
    raise ValidationFailed(
        "A message's content must be a string or a list of text parts.", details={"param": "messages"}
    )


def _persona_of(model: str) -> str | None:
    if model == MODEL_ALIAS:
        return None
    prefix = MODEL_ALIAS + "/"
    if model.startswith(prefix) and len(model) > len(prefix):
        return model[len(prefix) :]
    raise NotFound(
        f"The model {model!r} does not exist; use {MODEL_ALIAS!r} or one listed by GET /v1/models.",
        code="model_not_found",
        details={"param": "model"},
    )


def parse_completion_request(raw: bytes) -> CompletionRequest:
    if len(raw) > settings.SOMA.max_request_bytes:
        raise PayloadTooLarge("The request body is too large.", details={"param": None})
    try:
        body = json_loads(raw or b"null")
    except ValidationFailed as exc:  # invalid_json / invalid_text, in the OpenAI error shape
        raise ValidationFailed(exc.message, code=exc.code, details={"param": None}) from None
    if not isinstance(body, dict):
        raise ValidationFailed("The body must be a JSON object.", details={"param": None})
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ValidationFailed("'model' is required.", details={"param": "model"})
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValidationFailed("'messages' must be a non-empty list.", details={"param": "messages"})
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        raise ValidationFailed("The last message must have the role 'user'.", details={"param": "messages"})
    text = _text_of(last.get("content"))
    if not text.strip():
        raise ValidationFailed("The last user message is empty.", details={"param": "messages"})
    if len(text) > settings.SOMA.max_message_chars:
        raise PayloadTooLarge(
            f"The message is longer than {settings.SOMA.max_message_chars} characters.",
            details={"param": "messages"},
        )
    if "\x00" in text:
        raise ValidationFailed("The message contains a NUL character.", details={"param": "messages"})
    n = body.get("n", 1)
    if n not in (1, None):
        raise ValidationFailed("Only n=1 is supported.", details={"param": "n"})
    stream = body.get("stream", False)
    if not isinstance(stream, bool | type(None)):
        raise ValidationFailed("'stream' must be a boolean.", details={"param": "stream"})
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise ValidationFailed("'stream_options' must be an object.", details={"param": "stream_options"})
    user = body.get("user")
    if user is not None and (not isinstance(user, str) or not 0 < len(user) <= MAX_USER_CHARS):
        raise ValidationFailed(
            f"'user' must be a string of 1 to {MAX_USER_CHARS} characters.", details={"param": "user"}
        )
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValidationFailed("'metadata' must be an object.", details={"param": "metadata"})
    if len(json.dumps(metadata)) > settings.SOMA.max_metadata_bytes:
        raise PayloadTooLarge("'metadata' is too large.", details={"param": "metadata"})
    return CompletionRequest(
        model=model,
        persona_name=_persona_of(model),
        message=text,
        stream=bool(stream),
        include_usage=bool(options.get("include_usage")),
        user=user,
        metadata={**metadata, "source": "openai"},
    )
