"""Accepting a user message: one transaction for session, event, turn and outbox row.

The whole accept is that one transaction, reads included: the Idempotency-Key
check, the session (or persona) the message goes to, the gateway's policy and
budget checks (``admit``: nothing is written before they pass), then the
writes — about four statements on PostgreSQL (session or session read, event,
turn, outbox row). The API key, policy data and budgets come from per-version
caches (``somaagent.versioned``); the broker publish and its bookkeeping come
after commit (``somaagent.outbox``).

With an ``Idempotency-Key`` the first answer is stored as the transaction's
last write (``INSERT … ON CONFLICT DO NOTHING``); a replay with the same body
returns it and starts nothing, a replay with another body is a conflict. Two
concurrent requests with one key meet on the key's unique constraint: the
second one's insert waits for the first to commit, finds the key taken, and
its transaction rolls back whole before it answers as a replay.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from conversations.models import (
    Attachment,
    EventType,
    IdempotencyRecord,
    Session,
    SessionEvent,
)
from conversations.selectors import session_get, session_owned
from conversations.services.events import FOLLOW_LEAF, attach_under, event_append
from conversations.services.titles import title_from_message
from conversations.turn.dispatch import turn_dispatch, turn_insert
from somaagent.errors import IdempotencyConflict, NotFound, ValidationFailed
from somaagent.models import Persona, Tenant
from somaagent.request_id import request_id_data
from somaagent.sql import insert_objects

# The gateway's checks: admit(session_id, persona_id) raises PolicyDenied or BudgetExceeded.
Admit = Callable[[uuid.UUID | None, uuid.UUID | None], None]


@dataclass(frozen=True)
class MessageInput:
    message: str
    session_id: uuid.UUID | None = None
    persona_id: uuid.UUID | None = None
    attachments: tuple[uuid.UUID, ...] = ()
    metadata: dict[str, Any] | None = None
    # The event the message follows on its branch (ROOT_PARENT: a new first message); None:
    # after the session's newest event.
    parent_event_id: uuid.UUID | str | None = None

    def fingerprint(self) -> str:
        body: dict[str, Any] = {
            "message": self.message,
            "session_id": str(self.session_id) if self.session_id else None,
            "persona_id": str(self.persona_id) if self.persona_id else None,
            "attachments": [str(a) for a in self.attachments],
            "metadata": self.metadata or {},
        }
        if self.parent_event_id is not None:  # absent from older keys' fingerprints
            body["parent_event_id"] = str(self.parent_event_id)
        return request_fingerprint(body)


ROOT_PARENT = "root"


def request_fingerprint(body: dict[str, Any]) -> str:
    """What an Idempotency-Key's replay must match: the request's canonical JSON, hashed."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
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


class _KeyTaken(Exception):
    """A concurrent request stored this Idempotency-Key first: roll back, answer as it did."""


def message_accept(
    *,
    tenant: Tenant,
    data: MessageInput,
    idempotency_key: str | None = None,
    created_by: Any = None,
    owner: Any = None,
    admit: Admit | None = None,
) -> dict[str, Any]:
    """Store the message and queue its turn; returns the 202 body.

    ``admit`` (the gateway's policy and budget checks) runs before anything is
    written, and not for a replay: that returns the stored answer and starts nothing.
    """
    return idempotent(
        tenant=tenant,
        key=idempotency_key,
        fingerprint=data.fingerprint() if idempotency_key else "",
        owner=owner,
        produce=lambda: _accept_in_transaction(
            tenant=tenant, data=data, created_by=created_by, owner=owner, admit=admit
        ),
    )


def idempotent(
    *,
    tenant: Tenant,
    key: str | None,
    fingerprint: str,
    owner: Any,
    produce: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """Run ``produce`` in one transaction whose last write stores its answer under ``key``;
    a replay of the key returns that answer (same ``fingerprint``) or is a conflict."""
    idempotency_key = key
    try:
        with transaction.atomic():
            if idempotency_key:
                existing = IdempotencyRecord.objects.filter(tenant=tenant, key=idempotency_key).first()
                if existing is not None:
                    return _replay(existing, fingerprint=fingerprint, owner=owner)
            response = produce()
            if idempotency_key:
                record = IdempotencyRecord(
                    tenant=tenant, key=idempotency_key, request_hash=fingerprint, response=response
                )
                if not insert_objects([record], ignore_conflicts=True, returning=("id",)):
                    raise _KeyTaken
    except _KeyTaken:
        return _replay(
            IdempotencyRecord.objects.get(tenant=tenant, key=idempotency_key),
            fingerprint=fingerprint,
            owner=owner,
        )
    return response


def _accept_in_transaction(
    *, tenant: Tenant, data: MessageInput, created_by: Any, owner: Any, admit: Admit | None
) -> dict[str, Any]:
    if (
        data.persona_id is not None
        and not Persona.objects.for_tenant(tenant).filter(pk=data.persona_id).exists()
    ):
        raise NotFound("No such persona.", details={"persona_id": str(data.persona_id)})
    session = None
    persona_id = data.persona_id
    if data.session_id is not None:
        session = session_get(tenant=tenant, session_id=data.session_id, owner=owner)
        persona_id = session.persona_id  # the persona the turn will really use
    if admit is not None:
        admit(data.session_id, persona_id)
    if session is not None and data.persona_id is not None and persona_id not in (None, data.persona_id):
        raise ValidationFailed(
            "persona_id does not match the session's persona.",
            details={"persona_id": str(data.persona_id)},
        )
    is_new = session is None
    if session is None:
        session = Session(
            tenant=tenant,
            persona_id=persona_id,
            title=title_from_message(data.message),
            title_automatic=True,
            created_by=created_by,
        )
        insert_objects([session])
    attachments = _attachments(tenant=tenant, ids=data.attachments)
    attach = FOLLOW_LEAF
    if data.parent_event_id is not None:
        attach = attach_under(_parent(session=session, parent_event_id=data.parent_event_id, is_new=is_new))
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
        attach=attach,
        publish_batched=True,
    )
    if attachments:
        Attachment.objects.filter(pk__in=[a.pk for a in attachments], session__isnull=True).update(
            session=session
        )
    turn = turn_insert(
        tenant_id=tenant.pk, session_id=session.pk, user_event=event, new_session=data.session_id is None
    )
    if turn.dispatched_at is not None:
        turn_dispatch(turn=turn, reason="accept", mark_dispatched=False)
    return {
        "session_id": str(session.pk),
        "event_id": str(event.event_id),
        "turn_id": str(turn.pk),
        "stream": stream_links(session_id=session.pk, after=event.seq - 1),
    }


def _parent(*, session: Session, parent_event_id: uuid.UUID | str, is_new: bool) -> uuid.UUID | None:
    """The event a message sent with ``parent_event_id`` goes under (None: a new first message)."""
    if parent_event_id == ROOT_PARENT:
        return None  # a new chat's first message is one anyway
    if is_new or not SessionEvent.objects.filter(session=session, event_id=parent_event_id).exists():
        # Without session_id the message starts a new chat, which has no events yet.
        raise NotFound("No such event in this session.", details={"parent_event_id": str(parent_event_id)})
    return uuid.UUID(str(parent_event_id))


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
