"""Memory writes enter ``memory_write_outbox`` inside the transaction of the events they describe.

``memory_remember_turn`` is called at the end of a turn (conversations'
``turn_end``): in the transaction that stores ``assistant.final`` it adds one
write for the user message and one for the reply. ``memory_forget_session``
is a session DELETE hook: the forget goes the same durable way. Each write's
idempotency key is derived from its event, so writing twice stores once, and
the key is what the memory service dedupes by.
After commit the session's write stream is dispatched (``dispatch``); the beat
sweep catches whatever that fast path misses.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from memory.models import MemoryWrite
from memory.port import namespace_for
from memory.services.dispatch import memory_stream_kick
from somaagent.errors import PolicyDenied
from somaagent.policy import policy_authorize
from somaagent.sql import insert_objects

log = logging.getLogger(__name__)


def remember_key(event_id: uuid.UUID | str) -> str:
    return f"mem:{event_id}"


def forget_key(session_id: uuid.UUID | str) -> str:
    return f"forget:{session_id}"


def retry_deadline(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.SOMA.memory.retry_budget_seconds)


def remember_write(
    *,
    tenant_id: uuid.UUID,
    session_id: uuid.UUID,
    persona_id: uuid.UUID | None,
    namespace: str,
    event_id: uuid.UUID,
    role: str,
    text: str,
    occurred_at: datetime,
    extra: dict[str, Any] | None = None,
) -> MemoryWrite:
    """An unsaved write that remembers one message."""
    now = timezone.now()
    key = remember_key(event_id)
    value = {
        "text": text,
        "role": role,
        "session_id": str(session_id),
        "persona_id": str(persona_id) if persona_id else None,
        "event_id": str(event_id),
        "occurred_at": occurred_at.isoformat(),
        **(extra or {}),
    }
    return MemoryWrite(
        tenant_id=tenant_id,
        session_id=session_id,
        persona_id=persona_id,
        event_id=event_id,
        op=MemoryWrite.Op.REMEMBER,
        payload={
            "namespace": namespace,
            "key": key,
            "value": value,
            "tags": ["conversation", f"role:{role}"],
        },
        idempotency_key=key,
        created_at=now,
        next_attempt_at=now,
        retry_deadline=retry_deadline(now),
    )


def memory_writes_enqueue(*, writes: list[MemoryWrite]) -> None:
    """Store writes in the caller's transaction (a repeated key is ignored); dispatch after commit."""
    writes = [w for w in writes if w.op == MemoryWrite.Op.FORGET or w.payload["value"]["text"].strip()]
    if not writes:
        return
    insert_objects(writes, ignore_conflicts=True)
    streams = {(w.tenant_id, w.session_id) for w in writes}

    def _dispatch() -> None:
        for tenant_id, session_id in streams:
            memory_stream_kick(tenant_id=tenant_id, session_id=session_id)

    transaction.on_commit(_dispatch)


def memory_remember_turn(
    *,
    turn_id: uuid.UUID,
    tenant_id: uuid.UUID,
    session_id: uuid.UUID,
    persona_id: uuid.UUID | None,
    namespace: str,
    user_event_id: uuid.UUID,
    user_message: str,
    user_occurred_at: datetime | None,
    reply_event_id: uuid.UUID,
    reply: str,
    reply_occurred_at: datetime,
) -> None:
    """Remember a turn that ended with a final answer: its user message and the reply.

    Called in the transaction that stores the reply; a write the policy denies
    (``memory.write``) is left out and the turn stands.
    """
    if not _memory_write_allowed(
        tenant_id=tenant_id, persona_id=persona_id, session_id=session_id, turn_id=turn_id
    ):
        return
    memory_writes_enqueue(
        writes=[
            remember_write(
                tenant_id=tenant_id,
                session_id=session_id,
                persona_id=persona_id,
                namespace=namespace,
                event_id=user_event_id,
                role="user",
                text=user_message,
                occurred_at=user_occurred_at or reply_occurred_at,
                extra={"turn_id": str(turn_id)},
            ),
            remember_write(
                tenant_id=tenant_id,
                session_id=session_id,
                persona_id=persona_id,
                namespace=namespace,
                event_id=reply_event_id,
                role="assistant",
                text=reply,
                occurred_at=reply_occurred_at,
                extra={"turn_id": str(turn_id), "reply_to": str(user_event_id)},
            ),
        ]
    )


def _memory_write_allowed(
    *, tenant_id: uuid.UUID, persona_id: uuid.UUID | None, session_id: uuid.UUID, turn_id: uuid.UUID
) -> bool:
    """Policy ``memory.write``: a denied (or undecidable) write is left out, the turn stands."""
    try:
        policy_authorize(
            tenant=tenant_id,
            persona_id=persona_id,
            action="memory.write",
            resource=f"session:{session_id}",
            context={"turn_id": str(turn_id)},
        )
    except PolicyDenied as exc:
        log.info(
            "memory write not allowed; the turn is not remembered",
            extra={"turn_id": str(turn_id), "code": exc.code},
        )
        return False
    return True


def memory_forget_session(*, session: Any) -> None:
    """Ask the memory service to forget the session, through the write outbox (session_delete).

    In the owner's namespace and, for a persona, in its shared one too (the persona's
    setting may have changed while the session lived)."""
    now = timezone.now()
    namespaces = [namespace_for(persona_id=session.persona_id, owner=session.created_by_id)]
    if session.persona_id:
        namespaces.append(namespace_for(persona_id=session.persona_id, shared=True))
    writes = []
    for index, namespace in enumerate(namespaces):
        key = forget_key(session.pk) + ("" if index == 0 else ":shared")
        writes.append(
            MemoryWrite(
                tenant_id=session.tenant_id,
                session_id=session.pk,
                persona_id=session.persona_id,
                event_id=uuid.uuid4(),
                op=MemoryWrite.Op.FORGET,
                payload={"namespace": namespace, "session_id": str(session.pk), "key": key},
                idempotency_key=key,
                created_at=now,
                next_attempt_at=now,
                retry_deadline=retry_deadline(now),
            )
        )
    memory_writes_enqueue(writes=writes)
