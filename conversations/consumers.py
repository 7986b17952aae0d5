"""``WS /ws/sessions/{id}/?after=``: the session's events as JSON frames, replayed then live.

The same reader as SSE (``SessionFollower``): every event after the cursor,
deltas of a running reply included, in order, exactly once; then live ones.
Client frames go through the services of the HTTP API (``ws_protocol``).
Closing the socket stops only this reader, never the reply.

Refusals happen before the handshake is accepted: with an ASGI server that
supports the ``websocket.http.response`` extension (uvicorn) the client gets
the HTTP status (401, 404, 400) and the API's JSON error body; otherwise the
handshake is closed with ``4000 + status`` (4401, 4404, 4400).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import Any
from urllib.parse import parse_qsl

from channels.generic.websocket import AsyncWebsocketConsumer

from conversations.selectors import visible_session_id
from conversations.sse import parse_cursor
from conversations.stream_access import StreamAccess, refusal_frame
from conversations.streaming import HEARTBEAT, SessionFollower
from conversations.ws_protocol import HEARTBEAT_FRAME, answer
from somaagent.api_errors import error_body, unavailable_database
from somaagent.async_db import db_call
from somaagent.errors import NotFound, SomaError, StreamUnavailable, Unauthenticated
from somaagent.identity import scopes as sc
from somaagent.identity.authentication import admit
from somaagent.identity.principal import Principal
from somaagent.identity.ws_auth import APP_SUBPROTOCOL
from somaagent.metrics.record import stream_tracked
from somaagent.stream_slots import StreamSlot, slot_kept, stream_slot_take_async

log = logging.getLogger(__name__)


def _dumps(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"))


class RejectingConsumer(AsyncWebsocketConsumer):
    """Refuses the handshake with an HTTP status (or close code 4000 + status)."""

    # The stream comes from the session's buffer, not the channel layer (which drops messages).
    channel_layer_alias = "soma-no-channel-layer"

    async def reject(self, exc: SomaError) -> None:
        if "websocket.http.response" in (self.scope.get("extensions") or {}):
            body = _dumps(error_body(exc.code, exc.message, exc.details)).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            if (wait := getattr(exc, "retry_after", None)) is not None:
                headers.append((b"retry-after", str(int(wait)).encode()))
            await self.base_send(
                {"type": "websocket.http.response.start", "status": exc.status_code, "headers": headers}
            )
            await self.base_send({"type": "websocket.http.response.body", "body": body})
        else:
            await self.close(code=4000 + exc.status_code)

    async def connect(self) -> None:
        await self.reject(NotFound("No such WebSocket endpoint."))


class SessionStreamConsumer(RejectingConsumer):
    principal: Principal
    session_id: uuid.UUID
    follower_task: asyncio.Task[None] | None = None
    slot: StreamSlot | None = None

    async def connect(self) -> None:
        try:
            principal = self.scope.get("soma_principal")
            if principal is None:
                raise self.scope.get("soma_auth_error") or Unauthenticated("Authentication required.")
            await db_call(admit)(principal, sc.CONVERSATIONS_READ)  # scope + rate limit
            query = dict(_query_pairs(self.scope.get("query_string", b"")))
            after = parse_cursor(query.get("after"), name="after")
            requested = self.scope["url_route"]["kwargs"]["session_id"]
            sid = await db_call(visible_session_id)(principal, requested)
            self.slot = await stream_slot_take_async(principal)
        except SomaError as exc:
            await self.reject(exc)
            return
        except Exception as exc:
            down = unavailable_database(exc)
            if down is None:
                raise
            await self.reject(down)  # 503 database_unavailable: the client tries again later
            return
        self.principal = principal
        self.session_id = sid
        offered = self.scope.get("subprotocols") or []
        await self.accept(subprotocol=APP_SUBPROTOCOL if APP_SUBPROTOCOL in offered else None)
        self.follower_task = asyncio.create_task(self._follow(after))

    async def _follow(self, after: int) -> None:
        try:
            with stream_tracked("websocket"):
                await self._relay(after)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("WebSocket stream failed", extra={"session_id": str(self.session_id)})
            with contextlib.suppress(Exception):
                await self.close(code=1011)

    async def _relay(self, after: int) -> None:
        access = StreamAccess(principal=self.principal, session_id=self.session_id)
        slot, self.slot = self.slot, None  # slot_kept releases it now
        try:
            async for envelope in slot_kept(slot, SessionFollower(self.session_id, after)):
                refused = await access.refusal(heartbeat=envelope is HEARTBEAT)
                if refused is not None:
                    await self._end(refused)
                    return
                await self.send(text_data=_dumps(HEARTBEAT_FRAME if envelope is HEARTBEAT else envelope))
        except StreamUnavailable as exc:  # the buffer went away: the client resumes from its cursor
            await self._end(exc)

    async def _end(self, refused: SomaError) -> None:
        await self.send(text_data=_dumps(refusal_frame(refused)))  # the last frame says why
        await self.close(code=4000 + refused.status_code, reason=refused.message[:120])

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        reply = await db_call(answer)(
            principal=self.principal, session_id=self.session_id, text=text_data, binary=bytes_data
        )
        await self.send(text_data=_dumps(reply))

    async def disconnect(self, code: int) -> None:
        if self.follower_task is not None:
            self.follower_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.follower_task
        if self.slot is not None:  # taken, but the relay never started
            await self.slot.release()


def _query_pairs(raw: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    except ValueError:
        return []
