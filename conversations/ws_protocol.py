"""What a WebSocket client may send, and what it gets back.

Client frames (text, JSON objects):

- ``{"type": "message", "message": ..., "attachments"?, "metadata"?, "persona_id"?,
  "parent_event_id"?, "session_id"?, "idempotency_key"?, "ref"?}`` — the fields of
  ``POST /v1/session/message``; ``session_id`` may be omitted (it is the socket's)
  and must not name another session. It goes through the same accept service,
  so ``idempotency_key`` behaves like the ``Idempotency-Key`` header.
- ``{"type": "cancel", "ref"?}`` — like ``POST /v1/sessions/{id}/cancel``.
- ``{"type": "approval", "call_id", "decision": "approve"|"deny", "arguments"?, "always"?,
  "ref"?}`` — like ``POST /v1/sessions/{id}/approvals/{call_id}``; the ack's status is 200
  and its body the approval.

Server control frames (besides the event envelopes, whose types contain a dot):

- ``{"type": "ack", "ref", "status": 202, "body": {...}}`` — the HTTP answer's body.
- ``{"type": "error", "ref", "status": 4xx, "error": {code, message, details}}``.
- ``{"type": "heartbeat"}`` — nothing happened for a while; the socket is alive.

On each heartbeat (and between events at least as often) the server checks that
the key is not revoked, the user still active and a member of the tenant, the
JWT not expired and the session not deleted (``stream_access``); if one fails
it sends a last ``error`` frame saying why and closes the socket with ``4401``
or ``4404``.

``ref`` is any short string the client chooses; it is echoed so the client can
match answers to frames.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.conf import settings

from conversations import serializers as s
from conversations.api import IDEMPOTENCY_KEY_RE
from conversations.approvals_api import approval_frame_answer
from conversations.selectors import session_for
from conversations.services.accept import MessageInput
from conversations.services.sessions import session_cancel
from conversations.turn.admission import message_admit_accept
from somaagent.api_errors import error_body, exception_handler
from somaagent.errors import PayloadTooLarge, ValidationFailed
from somaagent.identity import scopes as sc
from somaagent.identity.authentication import admit
from somaagent.identity.principal import Principal
from somaagent.json_input import json_loads

log = logging.getLogger(__name__)

Frame = dict[str, Any]
MAX_REF_CHARS = 100
HEARTBEAT_FRAME: Frame = {"type": "heartbeat"}


def error_frame(exc: Exception, *, ref: str | None = None) -> Frame:
    """An error in the HTTP API's shape, with its status."""
    response = exception_handler(exc, {})
    if response is None:
        log.error("unexpected error handling a WebSocket frame", exc_info=exc)
        return {
            "type": "error",
            "ref": ref,
            "status": 500,
            **error_body("internal_error", "Internal server error."),
        }
    frame = {"type": "error", "ref": ref, "status": response.status_code, **response.data}
    if (wait := response.headers.get("Retry-After")) is not None:
        frame["retry_after"] = int(wait)  # the header's seconds: when to send it again
    return frame


def parse_frame(text: str | None, binary: bytes | None) -> tuple[Frame, str | None]:
    """The client's JSON object and its ``ref``; raises SomaError for anything else."""
    if text is None:
        raise ValidationFailed("Send text frames holding JSON objects.", code="malformed_frame")
    if len(text.encode()) > settings.SOMA.max_request_bytes:
        raise PayloadTooLarge(
            "The frame is too large.", details={"max_bytes": settings.SOMA.max_request_bytes}
        )
    frame = json_loads(text, what="frame")
    if not isinstance(frame, dict):
        raise ValidationFailed("The frame must be a JSON object.", code="malformed_frame")
    ref = frame.get("ref")
    if ref is not None and (not isinstance(ref, str) or len(ref) > MAX_REF_CHARS):
        raise ValidationFailed(f"ref must be a string of at most {MAX_REF_CHARS} characters.")
    return frame, ref


def handle_frame(*, principal: Principal, session_id: uuid.UUID, frame: Frame, ref: str | None) -> Frame:
    """Run one client frame through the same services as the HTTP API (sync: touches the DB)."""
    kind = frame.get("type")
    if kind in ("message", "cancel", "approval"):
        admit(principal, sc.CONVERSATIONS_WRITE)  # scope + per-key rate limit, like the HTTP API
    if kind == "message":
        body = _message(principal=principal, session_id=session_id, frame=frame)
    elif kind == "cancel":
        unknown = sorted(set(frame) - {"type", "ref"})
        if unknown:
            raise ValidationFailed("Unknown field.", details={name: ["Unknown field."] for name in unknown})
        session = session_for(principal, session_id)
        cancelled = session_cancel(session=session)
        body = {"session_id": str(session.pk), "cancelled_turns": [str(t) for t in cancelled]}
    elif kind == "approval":
        call_id = frame.get("call_id")
        if not isinstance(call_id, str) or not call_id or len(call_id) > 200:
            raise ValidationFailed("call_id must be the call_id of a tool.approval_requested event.")
        data = {k: v for k, v in frame.items() if k not in ("type", "ref", "call_id")}
        body = approval_frame_answer(principal=principal, session_id=session_id, call_id=call_id, data=data)
        return {"type": "ack", "ref": ref, "status": 200, "body": body}
    else:
        raise ValidationFailed(
            "type must be 'message', 'cancel' or 'approval'.",
            code="unknown_frame_type",
            details={"type": str(kind)},
        )
    return {"type": "ack", "ref": ref, "status": 202, "body": body}


def _message(*, principal: Principal, session_id: uuid.UUID, frame: Frame) -> dict[str, Any]:
    data = {k: v for k, v in frame.items() if k not in ("type", "ref", "idempotency_key")}
    key = frame.get("idempotency_key")
    if key is not None and (not isinstance(key, str) or not IDEMPOTENCY_KEY_RE.match(key)):
        raise ValidationFailed(
            "idempotency_key must be 1 to 255 printable ASCII characters.",
            details={"idempotency_key": "invalid"},
        )
    if data.get("session_id") in (None, ""):
        data["session_id"] = str(session_id)
    serializer = s.MessageInSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    v = serializer.validated_data
    if v["session_id"] != session_id:
        raise ValidationFailed(
            "session_id must be this socket's session.", details={"session_id": str(v["session_id"])}
        )
    return message_admit_accept(  # policy (403) and budget (429) as for POST /v1/session/message
        principal=principal,
        data=MessageInput(
            message=v["message"],
            session_id=session_id,
            persona_id=v.get("persona_id"),
            attachments=tuple(v.get("attachments") or ()),
            metadata=v.get("metadata"),
            parent_event_id=v.get("parent_event_id"),
        ),
        idempotency_key=key,
    )


def answer(*, principal: Principal, session_id: uuid.UUID, text: str | None, binary: bytes | None) -> Frame:
    """The one frame that answers a client frame; never raises."""
    ref: str | None = None
    try:
        frame, ref = parse_frame(text, binary)
        return handle_frame(principal=principal, session_id=session_id, frame=frame, ref=ref)
    except Exception as exc:  # domain, DRF validation and unexpected errors all become a frame
        return error_frame(exc, ref=ref)
