"""The one event envelope shared by SSE, WebSocket and the history endpoint (SPEC §7)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from conversations.models import SessionEvent

Envelope = dict[str, Any]


def make_envelope(
    *,
    seq: int,
    event_id: UUID | str,
    session_id: UUID | str,
    type: str,
    role: str,
    occurred_at: datetime,
    data: dict[str, Any],
) -> Envelope:
    return {
        "id": str(seq),
        "event_id": str(event_id),
        "session_id": str(session_id),
        "type": str(type),
        "role": role,
        "occurred_at": occurred_at.isoformat().replace("+00:00", "Z"),
        "data": data,
    }


def envelope_of(event: SessionEvent) -> Envelope:
    return make_envelope(
        seq=event.seq,
        event_id=event.event_id,
        session_id=event.session_id,
        type=event.type,
        role=event.role,
        occurred_at=event.occurred_at,
        data=event.payload,
    )


def seq_of(envelope: Envelope) -> int:
    return int(envelope["id"])
