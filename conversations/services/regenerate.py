"""Another reply to a message (regenerate): a new turn for it, whose reply starts a branch.

The new reply's first event goes right under the message, beside the replies it
already has (``ClaimedTurn.attach_next``); the old ones stay. Like an accept, it
is one transaction (the gateway's checks, a cursor that places the turn in the
session's queue of turns, the turn, its outbox row), optionally under an
``Idempotency-Key``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from conversations.models import EventType, Session, SessionEvent
from conversations.services.accept import idempotent, request_fingerprint, stream_links
from conversations.services.events import allocate_seq
from conversations.turn.dispatch import turn_dispatch, turn_insert
from somaagent.errors import NotFound, ValidationFailed
from somaagent.models import Tenant

# The gateway's checks for the message answered again: admit(message, persona_id) raises.
AdmitAgain = Callable[[str, uuid.UUID | None], None]


def regenerated_message(*, session: Session, event_id: object) -> SessionEvent:
    """The user message to answer again: ``event_id`` names it, or any event of one of its
    replies. Another session's (or tenant's) event is not found."""
    try:
        eid = uuid.UUID(str(event_id))
    except (ValueError, TypeError, AttributeError):
        raise NotFound("No such event in this session.") from None
    event = SessionEvent.objects.filter(session=session, event_id=eid).first()
    if event is None:
        raise NotFound("No such event in this session.")
    if event.type == EventType.USER_MESSAGE:
        return event
    reply_to = event.payload.get("reply_to") if isinstance(event.payload, dict) else None
    message = (
        SessionEvent.objects.filter(session=session, event_id=reply_to, type=EventType.USER_MESSAGE).first()
        if isinstance(reply_to, str) and _is_uuid(reply_to)
        else None
    )
    if message is None:
        raise ValidationFailed(
            "Only a message, or a reply to one, can be answered again.",
            details={"event_id": str(eid), "type": event.type},
        )
    return message


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def reply_regenerate(
    *,
    tenant: Tenant,
    session: Session,
    event_id: object,
    idempotency_key: str | None = None,
    owner: Any = None,
    admit: AdmitAgain | None = None,
) -> dict[str, Any]:
    """Queue another reply to the message ``event_id`` names; returns the 202 body."""

    def produce() -> dict[str, Any]:
        message = regenerated_message(session=session, event_id=event_id)
        if admit is not None:
            admit(str(message.payload.get("message", "")), session.persona_id)
        position = allocate_seq(session_id=session.pk)
        turn = turn_insert(
            tenant_id=tenant.pk,
            session_id=session.pk,
            user_event=message,
            new_session=False,
            position=position,
        )
        if turn.dispatched_at is not None:
            turn_dispatch(turn=turn, reason="regenerate", mark_dispatched=False)
        return {
            "session_id": str(session.pk),
            "event_id": str(message.event_id),
            "turn_id": str(turn.pk),
            "stream": stream_links(session_id=session.pk, after=position),
        }

    fingerprint = request_fingerprint({"regenerate": str(event_id), "session_id": str(session.pk)})
    return idempotent(
        tenant=tenant, key=idempotency_key, fingerprint=fingerprint, owner=owner, produce=produce
    )
