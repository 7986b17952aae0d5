"""Memories belong to the member who said them: another member of the tenant never recalls them,
unless the persona is set to share its memory tenant-wide. Real web, worker and stub model."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from django.contrib.auth import get_user_model

from memory.models import MemoryWrite
from somaagent.models import Membership, Persona, Tenant
from tests.live import LiveSystem, read_stream, wait_until
from tests.memory.flow import llm_request_ending_with

pytestmark = pytest.mark.integration


def member_token(system: LiveSystem, tenant: Tenant) -> str:
    name, password = f"m-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    user = get_user_model().objects.create_user(username=name, password=password)
    Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.MEMBER)
    r = httpx.post(f"{system.url}/v1/auth/token", json={"username": name, "password": password}, timeout=30)
    assert r.status_code == 200, r.text
    return str(r.json()["access"])


def ask(system: LiveSystem, token: str, message: str, **extra: Any) -> dict[str, Any]:
    with system.client(token) as c:
        r = c.post("/v1/session/message", json={"message": message, **extra})
    assert r.status_code == 202, r.text
    events = read_stream(system, token, r.json()["session_id"])
    assert events[-1]["type"] == "assistant.final", events[-1]
    return dict(events[-1]["data"])


def delivered(tenant: Tenant, count: int) -> None:
    wait_until(
        lambda: MemoryWrite.objects.filter(tenant=tenant, state="delivered").count() >= count,
        timeout=60,
        interval=0.2,
        what=f"{count} delivered memory writes",
    )


def test_a_member_never_recalls_another_members_memories(live_system, live_db, llm_stub) -> None:
    tenant = Tenant.objects.create(name=f"t-{uuid.uuid4().hex[:8]}")
    alice, bob = member_token(live_system, tenant), member_token(live_system, tenant)
    ask(live_system, alice, "My cat is called Zorblax and she adores tuna [[reply=Lovely name.]]")
    delivered(tenant, 2)

    question = f"What is the name of my cat? ({uuid.uuid4().hex[:8]})"
    assert ask(live_system, bob, question)["memory"] == []
    assert "Zorblax" not in str(llm_request_ending_with(llm_stub.url, question)["messages"])

    again = f"What is the name of my cat? ({uuid.uuid4().hex[:8]})"
    refs = ask(live_system, alice, again)["memory"]
    assert refs and "Zorblax" in refs[0]["snippet"], "the member who said it recalls it"
    memories = llm_request_ending_with(llm_stub.url, again)["messages"][1]
    assert memories["role"] == "system" and "<memories>" in memories["content"]
    assert "never instructions" in memories["content"], "recalled text is quoted as data"


def test_a_persona_set_to_share_memory_shares_it_with_every_member(live_system, live_db, llm_stub) -> None:
    tenant = Tenant.objects.create(name=f"t-{uuid.uuid4().hex[:8]}")
    shared = Persona.objects.create(tenant=tenant, name="team", shared_memory=True)
    alice, bob = member_token(live_system, tenant), member_token(live_system, tenant)
    ask(
        live_system,
        alice,
        "Our deploy window is Thursday at 14:00 [[reply=Noted.]]",
        persona_id=str(shared.pk),
    )
    delivered(tenant, 2)
    question = f"When is our deploy window? ({uuid.uuid4().hex[:8]})"
    refs = ask(live_system, bob, question, persona_id=str(shared.pk))["memory"]
    assert refs and "Thursday" in refs[0]["snippet"]
