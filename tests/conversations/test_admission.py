"""The gateway's policy gate cannot be steered by the client; uploads' gate; idempotent replays."""

from __future__ import annotations

import pytest

from conversations.models import Session, SessionEvent
from conversations.turn.admission import attachment_upload_authorize
from somaagent.audit import Actor
from somaagent.errors import Forbidden, PolicyDenied
from somaagent.identity.principal import principal_for_key
from somaagent.models import Persona
from somaagent.policy.data import policy_data_set
from tests.somaagent.conftest import client_for, new_key, new_tenant

pytestmark = pytest.mark.django_db

STAFF = Actor(label="user:staff", is_staff=True)


def test_client_fields_cannot_lift_a_denial():
    tenant = new_tenant()
    _, raw = new_key(tenant)
    policy_data_set(tenant=tenant, document={"denied_actions": ["conversation.send"]}, actor=STAFF)
    spoof = {
        "actor_role": "staff",
        "policy_version": 0,
        "context": {"policy_version": 0, "actor_role": "admin"},
        "tenant": "someone-else",
    }
    response = client_for(raw).post(
        "/v1/session/message", {"message": "hi", "metadata": spoof}, format="json"
    )
    assert response.status_code == 403 and response.json()["error"]["code"] == "policy_denied"
    assert not Session.objects.for_tenant(tenant).exists()


def test_the_sessions_own_persona_is_checked_not_the_requested_one():
    tenant = new_tenant()
    _, raw = new_key(tenant)
    barred = Persona.objects.create(tenant=tenant, name="barred")
    free = Persona.objects.create(tenant=tenant, name="free")
    client = client_for(raw)
    sid = client.post(
        "/v1/session/message", {"message": "hi", "persona_id": str(barred.pk)}, format="json"
    ).json()["session_id"]
    policy_data_set(
        tenant=tenant,
        document={"personas": {str(barred.pk): {"denied_actions": ["conversation.send"]}}},
        actor=STAFF,
    )
    response = client.post(
        "/v1/session/message",
        {"message": "again", "session_id": sid, "persona_id": str(free.pk)},
        format="json",
    )
    assert response.status_code == 403
    assert response.json()["error"]["details"]["reasons"] == ["action_denied_for_persona"]
    assert SessionEvent.objects.filter(session_id=sid).count() == 1
    fresh = client.post("/v1/session/message", {"message": "hi", "persona_id": str(free.pk)}, format="json")
    assert fresh.status_code == 202


def test_an_accepted_message_replayed_after_a_denial_returns_the_same_answer():
    tenant = new_tenant()
    _, raw = new_key(tenant)
    client = client_for(raw)
    first = client.post("/v1/session/message", {"message": "hi"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 202
    policy_data_set(tenant=tenant, document={"denied_actions": ["conversation.send"]}, actor=STAFF)
    again = client.post("/v1/session/message", {"message": "hi"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.status_code == 202 and again.json() == first.json()
    fresh = client.post("/v1/session/message", {"message": "hi"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert fresh.status_code == 403


def test_attachment_upload_gate():
    tenant = new_tenant()
    uploader, _ = new_key(tenant, ["attachments:write"])
    reader, _ = new_key(tenant, ["conversations:read"])
    attachment_upload_authorize(principal=principal_for_key(uploader), mime="text/plain", size=10)
    with pytest.raises(Forbidden):
        attachment_upload_authorize(principal=principal_for_key(reader), mime="text/plain", size=10)
    policy_data_set(tenant=tenant, document={"denied_actions": ["attachments.upload"]}, actor=STAFF)
    with pytest.raises(PolicyDenied):
        attachment_upload_authorize(principal=principal_for_key(uploader), mime="text/plain", size=10)
