"""Tenant isolation over the real web server: another tenant's ids answer 404 and change nothing.

Also checks that the keys sent with these requests never reach the web server's log.
"""

from __future__ import annotations

import httpx
import pytest

from conversations.models import Session, SessionEvent, Turn
from tests.live import read_stream, wait_until

pytestmark = pytest.mark.integration


def send(system, key, message, **extra):
    with system.client(key) as c:
        r = c.post("/v1/session/message", json={"message": message, **extra})
    assert r.status_code == 202, r.text
    return r.json()


def snapshot(session_id: str) -> tuple:
    session = Session.objects.get(pk=session_id)
    events = list(SessionEvent.objects.filter(session_id=session_id).values_list("seq", "type"))
    turns = list(Turn.objects.filter(session_id=session_id).values_list("id", "status", "cancel_requested"))
    return session.title, session.status, session.last_seq, events, turns


def assert_404(response: httpx.Response) -> None:
    assert response.status_code == 404, (response.status_code, response.text)
    assert response.json()["error"]["code"] == "not_found"


def test_another_tenants_session_is_404_everywhere_and_unchanged(live_system, tenant_key, other_tenant_key):
    owner, intruder = tenant_key.key, other_tenant_key.key
    accepted = send(live_system, owner, "private [[tokens=5]]")
    sid = accepted["session_id"]
    read_stream(live_system, owner, sid)
    before = snapshot(sid)
    with live_system.client(intruder) as c:
        assert_404(c.get(f"/v1/sessions/{sid}"))
        assert_404(c.patch(f"/v1/sessions/{sid}", json={"title": "mine now"}))
        assert_404(c.get(f"/v1/sessions/{sid}/events"))
        assert_404(c.get(f"/v1/sessions/{sid}/events", params={"after": 0, "limit": 5}))
        assert_404(c.post(f"/v1/sessions/{sid}/cancel"))
        assert_404(c.delete(f"/v1/sessions/{sid}"))
        assert_404(c.post("/v1/session/message", json={"message": "hijack", "session_id": sid}))
        with c.stream("GET", f"/v1/sessions/{sid}/stream") as stream:
            assert stream.status_code == 404
        with c.stream("GET", f"/v1/sessions/{sid}/stream", headers={"Last-Event-ID": "1"}) as stream:
            assert stream.status_code == 404
        listed = c.get("/v1/sessions").json()["sessions"]
        assert sid not in [s["session_id"] for s in listed]
    assert snapshot(sid) == before
    with live_system.client(owner) as c:
        assert c.get(f"/v1/sessions/{sid}").json()["title"] == before[0]


def test_another_tenant_cannot_cancel_a_running_reply(live_system, tenant_key, other_tenant_key):
    accepted = send(live_system, tenant_key.key, "[[tokens=40]] [[delay=0.05]]")
    sid = accepted["session_id"]
    read_stream(live_system, tenant_key.key, sid, until=lambda e: e["type"] == "assistant.delta")
    with live_system.client(other_tenant_key.key) as c:
        assert_404(c.post(f"/v1/sessions/{sid}/cancel"))
        assert_404(c.delete(f"/v1/sessions/{sid}"))
    events = read_stream(live_system, tenant_key.key, sid)
    assert events[-1]["type"] == "assistant.final"
    assert not Turn.objects.get(pk=accepted["turn_id"]).cancel_requested


def test_another_tenants_persona_is_404(live_system, tenant_key, other_tenant_key):
    from somaagent.models import Persona

    persona = Persona.objects.create(tenant=tenant_key.tenant, name="secret-persona")
    try:
        with live_system.client(other_tenant_key.key) as c:
            assert_404(c.post("/v1/session/message", json={"message": "x", "persona_id": str(persona.pk)}))
        assert not Session.objects.filter(persona=persona).exists()
    finally:
        persona.delete()


def test_keys_never_reach_the_web_log(live_system, tenant_key):
    from somaagent.identity.apikeys import api_key_create, api_key_revoke

    key, raw = api_key_create(tenant=tenant_key.tenant, name="doomed")
    api_key_revoke(prefix=key.prefix)
    forged = f"soma_{key.prefix}_" + "Q" * 43
    for credential in (raw, forged, tenant_key.key):
        with live_system.client(credential) as c:
            c.get("/v1/sessions")
            c.post("/v1/session/message", json={"message": "hello [[tokens=1]]"})
            c.get("/v1/sessions/7b0c5a52-9d1e-4d2f-8f8e-0c1b2a3d4e5f/stream")
    assert live_system.web is not None
    wait_until(
        lambda: "Unauthorized" in live_system.web.log_tail(500_000), timeout=10, what="401s in the log"
    )
    log = live_system.web.log_tail(5_000_000)
    for secret in (raw, forged, tenant_key.key):
        assert secret not in log and secret.split("_", 2)[2] not in log
