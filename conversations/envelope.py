"""The one event envelope shared by SSE, WebSocket and the history endpoint (SPEC §7).

``parent_id`` is the event before it on its branch (null for the session's first
message); a delta's is the persisted event its reply last wrote (see services/branches.py).
"""

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
    parent_id: UUID | str | None = None,
) -> Envelope:
    return {
        "id": str(seq),
        "event_id": str(event_id),
        "session_id": str(session_id),
        "parent_id": str(parent_id) if parent_id else None,
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
        parent_id=event.parent_id,
    )


def seq_of(envelope: Envelope) -> int:
    return int(envelope["id"])
