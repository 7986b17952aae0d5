"""The front door's use cases: map a request to a session, accept it, read its reply from the stream.

The request goes through the gateway's own ``message_accept`` (one
transaction, outbox, turn), so everything a ``POST /v1/session/message`` gets
— memory, tools, policy, budgets, escalation, fallback — applies. Session
mapping: the ``X-Soma-Session-Id`` header names an existing session of the
caller's tenant; otherwise the ``user`` field is a conversation key that maps to
one session per tenant (``session_aliases``), created on first use; with
neither, every request starts a new session. Only the last user message is
sent: earlier messages in the request are already in the session (or, for a
new session, are not carried over).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from conversations.models import IdempotencyRecord, SessionAlias, SessionEvent
from conversations.openai_front.request import MODEL_ALIAS, CompletionRequest
from conversations.selectors import parse_uuid, session_for
from conversations.services.accept import MessageInput, replay_owner_check
from conversations.turn.admission import message_admit_accept
from somaagent.errors import IdempotencyConflict, NotFound
from somaagent.identity.principal import Principal
from somaagent.models import Persona, Tenant


@dataclass(frozen=True)
class AcceptedTurn:
    session_id: uuid.UUID
    turn_id: uuid.UUID
    event_id: uuid.UUID
    user_seq: int


def _persona_id(*, tenant: Tenant, name: str | None) -> uuid.UUID | None:
    if name is None:
        return None
    persona = Persona.objects.for_tenant(tenant).filter(name=name).only("pk").first()
    if persona is None:
        raise NotFound(
            f"The model {MODEL_ALIAS}/{name} does not exist (no such persona).",
            code="model_not_found",
            details={"param": "model"},
        )
    return persona.pk


def _accepted(body: dict[str, Any]) -> AcceptedTurn:
    event = SessionEvent.objects.only("seq").get(event_id=body["event_id"])
    return AcceptedTurn(
        session_id=uuid.UUID(body["session_id"]),
        turn_id=uuid.UUID(body["turn_id"]),
        event_id=uuid.UUID(body["event_id"]),
        user_seq=event.seq,
    )


def front_accept(
    *,
    principal: Principal,
    request: CompletionRequest,
    session_header: str | None,
    idempotency_key: str | None = None,
) -> AcceptedTurn:
    """Admit and accept the request's last user message into its session; returns the turn to follow."""
    tenant = principal.tenant
    persona_id = _persona_id(tenant=tenant, name=request.persona_name)

    def data(session_id: uuid.UUID | None) -> MessageInput:
        return MessageInput(
            message=request.message, session_id=session_id, persona_id=persona_id, metadata=request.metadata
        )

    def accept(session_id: uuid.UUID | None) -> dict[str, Any]:
        # The gateway's policy (403) and budget (429) checks, as for POST /v1/session/message.
        return message_admit_accept(
            principal=principal, data=data(session_id), idempotency_key=idempotency_key
        )

    if idempotency_key:
        replay = _replay(tenant=tenant, key=idempotency_key, data=data, owner=principal.session_owner)
        if replay is not None:
            return replay
    if session_header:
        return _accepted(accept(session_for(principal, parse_uuid(session_header)).pk))
    if not request.user:
        return _accepted(accept(None))
    key = _alias_key(principal, request.user)
    for _ in range(2):
        try:
            with transaction.atomic():
                alias = SessionAlias.objects.for_tenant(tenant).filter(key=key).first()
                body = accept(alias.session_id if alias else None)
                if alias is None:
                    SessionAlias.objects.create(tenant=tenant, key=key, session_id=body["session_id"])
                return _accepted(body)
        except IntegrityError:
            continue  # a concurrent first request created the alias: use it
    raise NotFound("Could not map 'user' to a session; try again.", details={"param": "user"})


def _alias_key(principal: Principal, user: str) -> str:
    """``user`` names a conversation of the tenant; of the member, when members see only their own."""
    owner = principal.session_owner
    return user if owner is None else f"member:{owner.pk}:{user}"


def _replay(
    *, tenant: Tenant, key: str, data: Callable[[uuid.UUID | None], MessageInput], owner: Any
) -> AcceptedTurn | None:
    """The stored answer for a repeated ``Idempotency-Key``, or None if the key is new.

    The first request of a ``user`` conversation had no session yet; its replay finds the alias,
    so both spellings of the same request count as the same request.
    """
    record = IdempotencyRecord.objects.filter(tenant=tenant, key=key).first()
    if record is None:
        return None
    session_id = uuid.UUID(str(record.response.get("session_id")))
    if record.request_hash not in (data(None).fingerprint(), data(session_id).fingerprint()):
        raise IdempotencyConflict(
            "This Idempotency-Key was already used with a different request body.",
            details={"param": None},
        )
    replay_owner_check(record, owner=owner)
    return _accepted(dict(record.response))


def front_models(*, tenant: Tenant) -> list[dict[str, Any]]:
    """``somaagent`` plus ``somaagent/<persona>`` for each of the tenant's personas."""
    created = int(tenant.created_at.timestamp())
    names = Persona.objects.for_tenant(tenant).order_by("name").values_list("name", flat=True)
    return [
        {"id": model_id, "object": "model", "created": created, "owned_by": "somaagent"}
        for model_id in [MODEL_ALIAS, *(f"{MODEL_ALIAS}/{n}" for n in names)]
    ]
