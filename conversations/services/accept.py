"""Accepting a user message: one transaction for session, event, turn and outbox row.

With an ``Idempotency-Key`` the first answer is stored with the same
transaction; a replay with the same body returns it and starts nothing, a
replay with another body is a conflict. Two concurrent requests with one key
race on the key's unique constraint: the loser's transaction rolls back whole.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations.models import (
    Attachment,
    EventType,
    IdempotencyRecord,
    Session,
    Turn,
)
from conversations.selectors import session_get, session_owned
from conversations.services.events import event_append
from conversations.services.titles import title_from_message
from conversations.services.turns import turn_dispatch
from somaagent.context import request_id_data
from somaagent.errors import IdempotencyConflict, NotFound, ValidationFailed
from somaagent.models import Persona, Tenant


@dataclass(frozen=True)
class MessageInput:
    message: str
    session_id: uuid.UUID | None = None
    persona_id: uuid.UUID | None = None
    attachments: tuple[uuid.UUID, ...] = ()
    metadata: dict[str, Any] | None = None

    def fingerprint(self) -> str:
        canonical = json.dumps(
            {
                "message": self.message,
                "session_id": str(self.session_id) if self.session_id else None,
                "persona_id": str(self.persona_id) if self.persona_id else None,
                "attachments": [str(a) for a in self.attachments],
                "metadata": self.metadata or {},
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def stream_links(*, session_id: uuid.UUID | str, after: int) -> dict[str, str]:
    return {
        "sse": f"/v1/sessions/{session_id}/stream?after={after}",
        "ws": f"/ws/sessions/{session_id}/?after={after}",
    }


def _replay(record: IdempotencyRecord, *, fingerprint: str, owner: Any) -> dict[str, Any]:
    if record.request_hash != fingerprint:
        raise IdempotencyConflict(
            "This Idempotency-Key was already used with a different request body.",
            details={"idempotency_key": record.key},
        )
    replay_owner_check(record, owner=owner)
    return dict(record.response)


def replay_owner_check(record: IdempotencyRecord, *, owner: Any) -> None:
    """A member who sees only their own sessions cannot replay another member's key.

    Keys are unique per tenant, so another member reusing one (same body) would otherwise
    be handed the first member's turn — and, at the OpenAI door, its reply.
    """
    if owner is None:
        return
    session_id = record.response.get("session_id")
    if session_id is None or not session_owned(
        tenant_id=record.tenant_id, session_id=session_id, owner=owner
    ):
        raise IdempotencyConflict(
            "This Idempotency-Key was already used by another member of the tenant; use a new key.",
            details={"idempotency_key": record.key},
        )


def message_accept(
    *,
    tenant: Tenant,
    data: MessageInput,
    idempotency_key: str | None = None,
    created_by: Any = None,
    owner: Any = None,
    admit: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Store the message and queue its turn; returns the 202 body.

    ``admit`` (the gateway's policy and budget checks) runs before anything is
    written, and not for a replay: that returns the stored answer and starts nothing.
    """
    fingerprint = data.fingerprint()
    if idempotency_key:
        existing = IdempotencyRecord.objects.filter(tenant=tenant, key=idempotency_key).first()
        if existing is not None:
            return _replay(existing, fingerprint=fingerprint, owner=owner)
    if admit is not None:
        admit()
    try:
        with transaction.atomic():
            record = None
            if idempotency_key:
                # First statement: a concurrent twin blocks here and then fails whole.
                record = IdempotencyRecord.objects.create(
                    tenant=tenant, key=idempotency_key, request_hash=fingerprint, response={}
                )
            response = _accept_in_transaction(tenant=tenant, data=data, created_by=created_by, owner=owner)
            if record is not None:
                record.response = response
                record.save(update_fields=["response"])
    except IntegrityError:
        if not idempotency_key:
            raise
        return _replay(
            IdempotencyRecord.objects.get(tenant=tenant, key=idempotency_key),
            fingerprint=fingerprint,
            owner=owner,
        )
    return response


def _accept_in_transaction(
    *, tenant: Tenant, data: MessageInput, created_by: Any, owner: Any
) -> dict[str, Any]:
    persona = None
    if data.persona_id is not None:
        persona = Persona.objects.for_tenant(tenant).filter(pk=data.persona_id).first()
        if persona is None:
            raise NotFound("No such persona.", details={"persona_id": str(data.persona_id)})
    if data.session_id is not None:
        session = session_get(tenant=tenant, session_id=data.session_id, owner=owner)
        if persona is not None and session.persona_id not in (None, persona.pk):
            raise ValidationFailed(
                "persona_id does not match the session's persona.",
                details={"persona_id": str(persona.pk)},
            )
    else:
        session = Session.objects.create(
            tenant=tenant,
            persona=persona,
            title=title_from_message(data.message),
            title_automatic=True,
            created_by=created_by,
        )
    attachments = _attachments(tenant=tenant, ids=data.attachments)
    event = event_append(
        session_id=session.pk,
        type=EventType.USER_MESSAGE,
        data={
            "message": data.message,
            "attachments": [
                {"id": str(a.pk), "filename": a.filename, "mime": a.mime, "size": a.size} for a in attachments
            ],
            "metadata": data.metadata or {},
            **request_id_data(),
        },
    )
    if attachments:
        Attachment.objects.filter(pk__in=[a.pk for a in attachments], session__isnull=True).update(
            session=session
        )
    # A turn waits while an earlier one of its session is active (that one dispatches it).
    waits = (
        data.session_id is not None
        and Turn.objects.filter(
            session=session, status__in=Turn.ACTIVE_STATUSES, user_event__seq__lt=event.seq
        ).exists()
    )
    turn = Turn.objects.create(
        tenant=tenant, session=session, user_event=event, dispatched_at=None if waits else timezone.now()
    )
    if not waits:
        turn_dispatch(turn=turn, reason="accept", mark_dispatched=False)
    return {
        "session_id": str(session.pk),
        "event_id": str(event.event_id),
        "turn_id": str(turn.pk),
        "stream": stream_links(session_id=session.pk, after=event.seq - 1),
    }


def _attachments(*, tenant: Tenant, ids: tuple[uuid.UUID, ...]) -> list[Attachment]:
    if not ids:
        return []
    found = {a.pk: a for a in Attachment.objects.for_tenant(tenant).filter(pk__in=ids).defer("content")}
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise NotFound("No such attachment.", details={"attachments": missing})
    quarantined = [str(a.pk) for a in found.values() if a.status != Attachment.Status.CLEAN]
    if quarantined:
        raise ValidationFailed(
            "Quarantined attachments cannot be sent.", details={"attachments": quarantined}
        )
    return [found[i] for i in ids]
