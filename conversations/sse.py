"""``GET /v1/sessions/{id}/stream``: Server-Sent Events from a cursor, then live.

The opening (credentials, the session, the cursor, a stream slot) is a plain
view: with the request's middleware it runs on one thread in one hop
(``somaagent.project.asgi_handler``), where an async view crossed between the
event loop and threads seven times. The frames then come from one coroutine per
client on the event loop, blocked in Redis between events; the handler stops
them when the client disconnects.
Resumes after ``Last-Event-ID`` (or ``?after=``). Each event is one
``id:``/``data:`` frame whose data is the SPEC §7 envelope; comment lines
are heartbeats. Disconnecting stops only this reader, never the reply. When the
caller's access lapses (``stream_access``) a last ``event: error`` frame ends it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator

from django.http import HttpRequest, HttpResponseBase, StreamingHttpResponse

from conversations.envelope import Envelope
from conversations.selectors import visible_session_id
from conversations.stream_access import StreamAccess, refusal_frame
from conversations.streaming import HEARTBEAT, SessionFollower
from somaagent.api_errors import error_response
from somaagent.errors import SomaError, StreamUnavailable, ValidationFailed
from somaagent.identity.authentication import request_principal
from somaagent.metrics import track_stream
from somaagent.stream_slots import slot_kept, stream_slot_take

MAX_CURSOR = 2**63 - 1  # cursors are 64-bit in the database; a larger one cannot be queried


def parse_cursor(raw: str | None, *, name: str) -> int:
    if raw is None or raw == "":
        return 0
    message = f"{name} must be an integer between 0 and {MAX_CURSOR}."
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        raise ValidationFailed(message, details={name: raw[:40]})
    value = int(raw)
    if value > MAX_CURSOR:
        raise ValidationFailed(message, details={name: raw})
    return value


def _last_frame(refused: SomaError) -> bytes:
    """The last frame: an ``error`` event (no id: the cursor stays where it was)."""
    data = json.dumps(refusal_frame(refused), separators=(",", ":"))
    return f"event: error\ndata: {data}\n\n".encode()


async def sse_frames(follower: AsyncIterable[Envelope | None], access: StreamAccess) -> AsyncIterator[bytes]:
    yield b"retry: 2000\n: connected\n\n"
    try:
        async for envelope in follower:
            refused = await access.refusal(heartbeat=envelope is HEARTBEAT)
            if refused is not None:
                yield _last_frame(refused)
                return
            if envelope is HEARTBEAT:
                yield b": heartbeat\n\n"
                continue
            data = json.dumps(envelope, separators=(",", ":"))
            yield f"id: {envelope['id']}\ndata: {data}\n\n".encode()
    except StreamUnavailable as exc:  # the buffer went away: the client resumes from its cursor
        yield _last_frame(exc)


def session_stream(request: HttpRequest, session_id: str) -> HttpResponseBase:
    if request.method != "GET":
        return error_response(SomaError("Use GET.", code="method_not_allowed"))
    try:
        principal = request_principal(request)
        sid = visible_session_id(principal, session_id)
        after = parse_cursor(request.headers.get("Last-Event-ID") or request.GET.get("after"), name="after")
        slot = stream_slot_take(principal)
    except SomaError as exc:
        return error_response(exc)
    access = StreamAccess(principal=principal, session_id=sid)
    frames = sse_frames(slot_kept(slot, SessionFollower(sid, after)), access)
    response = StreamingHttpResponse(track_stream("sse", frames), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
