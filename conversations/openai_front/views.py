"""``POST /v1/chat/completions`` and ``GET /v1/models`` for OpenAI clients (async views).

Thin: authenticate (``Authorization: Bearer <SomaAgent API key>``), parse,
accept through the gateway's service, then follow the session's events with
``SessionFollower`` and translate this turn's into OpenAI's shapes. A client
that disconnects stops only its reader; the reply still completes and stays
in the session. Errors use OpenAI's shape ``{"error": {message, type, code, param}}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from django.http import HttpRequest, HttpResponseBase, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions

from conversations.api import IDEMPOTENCY_KEY_RE
from conversations.openai_front.reply import (
    CANCELLED,
    ERROR,
    FINAL,
    RESTART,
    TEXT,
    ChunkWriter,
    ReplyTracker,
    completion_body,
    turn_error,
    usage_of,
)
from conversations.openai_front.request import (
    SESSION_HEADER,
    TURN_HEADER,
    CompletionRequest,
    OpenAIError,
    error_response,
    parse_completion_request,
)
from conversations.openai_front.service import AcceptedTurn, front_accept, front_models
from conversations.streaming import HEARTBEAT, SessionFollower
from somaagent.async_db import db_call
from somaagent.errors import SomaError, Unauthenticated, ValidationFailed
from somaagent.identity import scopes as sc
from somaagent.identity.async_auth import principal_from_token
from somaagent.identity.authentication import admit, bearer_token, require_scope
from somaagent.identity.principal import Principal
from somaagent.metrics import track_stream
from somaagent.stream_slots import slot_kept, stream_slot_take_async

COMPLETION_TIMEOUT = 600.0


async def _principal(request: HttpRequest, *scopes: str) -> Principal:
    """Bearer credentials only (the SDKs' way; no cookie session on a CSRF-exempt view), then
    the scopes and the per-key rate limit every API caller passes."""
    try:
        token = bearer_token(request)
    except exceptions.AuthenticationFailed as exc:
        raise Unauthenticated(str(exc.detail), code="invalid_api_key") from None
    if token is None:
        raise Unauthenticated(
            "No API key: send 'Authorization: Bearer <SomaAgent API key>'.", code="invalid_api_key"
        )
    try:
        principal = await principal_from_token(token)
    except Unauthenticated:
        raise Unauthenticated("Invalid or revoked API key.", code="invalid_api_key") from None
    await db_call(_admit)(principal, scopes)
    return principal


def _admit(principal: Principal, scopes: tuple[str, ...]) -> None:
    for scope in scopes[1:]:
        require_scope(principal, scope)
    admit(principal, scopes[0])


def _method_not_allowed(allowed: str) -> JsonResponse:
    response = error_response(OpenAIError(f"Use {allowed}.", status=405, code="method_not_allowed"))
    response["Allow"] = allowed
    return response


async def models(request: HttpRequest) -> HttpResponseBase:
    if request.method != "GET":
        return _method_not_allowed("GET")
    try:
        principal = await _principal(request, sc.CONVERSATIONS_READ)
    except SomaError as exc:
        return error_response(exc)
    data = await db_call(front_models)(tenant=principal.tenant)
    return JsonResponse({"object": "list", "data": data})


@csrf_exempt
async def chat_completions(request: HttpRequest) -> HttpResponseBase:
    if request.method != "POST":
        return _method_not_allowed("POST")
    try:
        # Sending needs write, reading the reply back needs read.
        principal = await _principal(request, sc.CONVERSATIONS_WRITE, sc.CONVERSATIONS_READ)
        parsed = parse_completion_request(request.body)
        key = request.headers.get("Idempotency-Key")
        if key is not None and not IDEMPOTENCY_KEY_RE.match(key):
            raise ValidationFailed("Idempotency-Key must be 1 to 255 printable ASCII characters.")
        # Reading the reply holds a stream: counted before anything is accepted.
        slot = await stream_slot_take_async(principal)
    except SomaError as exc:
        return error_response(exc)
    try:
        accepted = await db_call(front_accept)(
            principal=principal,
            request=parsed,
            session_header=request.headers.get(SESSION_HEADER),
            idempotency_key=key,
        )
    except SomaError as exc:
        if slot is not None:
            await slot.release()
        return error_response(exc)
    completion_id = f"chatcmpl-{accepted.turn_id.hex}"
    if parsed.stream:
        frames = slot_kept(slot, _stream(accepted, parsed, completion_id))
        response: HttpResponseBase = StreamingHttpResponse(
            track_stream("openai", frames), content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
    else:
        try:
            response = await _complete(accepted, parsed, completion_id)
        finally:
            if slot is not None:
                await slot.release()
    response[SESSION_HEADER] = str(accepted.session_id)
    response[TURN_HEADER] = str(accepted.turn_id)
    return response


def _events(accepted: AcceptedTurn) -> SessionFollower:
    """The session's events after our user message (other turns' included; the tracker filters)."""
    # Not resumable: an OpenAI client cannot pick a reply up from a cursor; without Redis
    # the follower polls the database until the reply ends.
    return SessionFollower(accepted.session_id, accepted.user_seq, resumable=False)


async def _stream(
    accepted: AcceptedTurn, parsed: CompletionRequest, completion_id: str
) -> AsyncIterator[bytes]:
    writer = ChunkWriter(completion_id=completion_id, model=parsed.model, include_usage=parsed.include_usage)
    tracker = ReplyTracker(str(accepted.event_id))
    yield writer.chunk({"role": "assistant", "content": ""})
    sent_text = False
    async for envelope in _events(accepted):
        if envelope is HEARTBEAT:
            yield b": keep-alive\n\n"
            continue
        step = tracker.feed(envelope)
        if step is None:
            continue
        if step.kind == TEXT:
            sent_text = True
            yield writer.chunk({"content": step.text})
        elif step.kind == RESTART:
            if sent_text:
                yield writer.error(
                    OpenAIError(
                        "The reply was restarted by another worker after part of it was sent; retry.",
                        status=503,
                        code="reply_restarted",
                    )
                )
                yield writer.done()
                return
            tracker.restart()
        elif step.kind == ERROR:
            yield writer.error(turn_error(step.data))
            yield writer.done()
            return
        else:
            yield writer.chunk({}, finish_reason="stop")
            if parsed.include_usage:
                yield writer.usage(usage_of(step.data))
            yield writer.done()
            return


async def _complete(
    accepted: AcceptedTurn, parsed: CompletionRequest, completion_id: str
) -> HttpResponseBase:
    tracker = ReplyTracker(str(accepted.event_id))
    try:
        async with asyncio.timeout(COMPLETION_TIMEOUT):
            async for envelope in _events(accepted):
                step = None if envelope is HEARTBEAT else tracker.feed(envelope)
                if step is None or step.kind == TEXT:
                    continue
                if step.kind == RESTART:
                    tracker.restart()
                    continue
                if step.kind == ERROR:
                    return error_response(turn_error(step.data))
                text = step.data.get("message") if step.kind == FINAL else step.data.get("partial")
                body = completion_body(
                    completion_id=completion_id,
                    model=parsed.model,
                    text=str(text if text is not None else "".join(tracker.text)),
                    finish_reason="stop",
                    usage=usage_of(step.data) if step.kind != CANCELLED else usage_of({}),
                )
                return JsonResponse(body)
    except TimeoutError:
        pass
    return error_response(
        OpenAIError(
            f"The reply did not finish within {int(COMPLETION_TIMEOUT)} s; it continues in session "
            f"{accepted.session_id}.",
            status=504,
            code="timeout",
        )
    )
