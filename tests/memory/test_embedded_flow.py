"""End to end on the embedded memory store (no SOMA_MEMORY_URL): remember, recall, forget."""

from __future__ import annotations

import uuid

import pytest

from memory.models import MemoryItem, MemoryReplica
from tests.live import wait_until
from tests.memory.flow import chat, llm_request_ending_with, wait_delivered

pytestmark = pytest.mark.integration


def test_embedded_store_remembers_recalls_in_a_new_session_and_forgets(live_system, tenant_key, llm_stub):
    system, key, tenant = live_system, tenant_key.key, tenant_key.tenant
    first, _ = chat(system, key, "Our wifi password is periwinkle-42 [[reply=Got it, noted.]]")
    wait_delivered(tenant, count=2)
    assert MemoryItem.objects.filter(tenant=tenant, session_id=first["session_id"]).count() == 2

    question = f"Remind me of the wifi password ({uuid.uuid4().hex[:8]})"
    _, final = chat(system, key, question)
    refs = final["data"]["memory"]
    assert refs[0]["id"] == first["event_id"] and "periwinkle-42" in refs[0]["snippet"]
    prompt = llm_request_ending_with(llm_stub.url, question)["messages"]
    assert "periwinkle-42" in prompt[1]["content"] and prompt[1]["role"] == "system"
    wait_until(lambda: MemoryReplica.objects.filter(tenant=tenant).count() == 4, timeout=30, what="replica")

    with system.client(key) as c:
        assert c.delete(f"/v1/sessions/{first['session_id']}").status_code == 204
    wait_delivered(tenant, count=5)
    assert not MemoryItem.objects.filter(tenant=tenant, session_id=first["session_id"]).exists()
    wait_until(
        lambda: not MemoryReplica.objects.filter(session_id=first["session_id"]).exists(),
        timeout=30,
        what="the replica to forget the session",
    )
    _, after = chat(system, key, f"Remind me of the wifi password ({uuid.uuid4().hex[:8]})")
    assert all("periwinkle" not in r["snippet"] for r in after["data"]["memory"])
