"""Builders shared by the memory tests."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

from django.utils import timezone

from memory.models import MemoryWrite
from memory.port import namespace_for
from memory.services.delivery import claim_head, memory_deliver
from memory.services.writes import memory_forget_session, memory_writes_enqueue, remember_write


def make_tenant(name: str | None = None):
    from somaagent.identity.apikeys import tenant_get_or_create

    return tenant_get_or_create(name=name or f"mem-{uuid.uuid4().hex[:10]}")


def enqueue(tenant, texts, *, session_id=None, persona_id=None, roles=None):
    """Store remember writes for ``texts`` in one session; returns them in order."""
    session_id = session_id or uuid.uuid4()
    writes = [
        remember_write(
            tenant_id=tenant.pk,
            session_id=session_id,
            persona_id=persona_id,
            namespace=namespace_for(persona_id=persona_id),
            event_id=uuid.uuid4(),
            role=(roles or ["user", "assistant"])[i % len(roles or ["user", "assistant"])],
            text=text,
            occurred_at=timezone.now(),
        )
        for i, text in enumerate(texts)
    ]
    memory_writes_enqueue(writes=writes)
    keys = [w.idempotency_key for w in writes]
    by_key = {w.idempotency_key: w for w in MemoryWrite.objects.filter(idempotency_key__in=keys)}
    return [by_key[k] for k in keys]


def deliver_stream(write, port):
    """Lease ``write`` (the head of its session's stream) and deliver the stream through ``port``."""
    claim = claim_head(tenant_id=write.tenant_id, session_id=write.session_id)
    assert claim is not None and claim.write_id == write.pk
    return memory_deliver(write_id=claim.write_id, token=claim.token, port=port)


def forget_session(tenant, session_id):
    """Run the session DELETE hook for ``session_id``; returns the forget write it stored."""
    memory_forget_session(
        session=SimpleNamespace(pk=session_id, tenant_id=tenant.pk, persona_id=None, created_by_id=None)
    )
    return MemoryWrite.objects.get(idempotency_key=f"forget:{session_id}")
