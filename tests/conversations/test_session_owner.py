"""Members chatting in one tenant see only the sessions they started; admins and keys see all."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from conversations.models import Session
from somaagent.identity.apikeys import api_key_create
from somaagent.models import Membership, Tenant

pytestmark = pytest.mark.django_db


def user_in(tenant: Tenant, role: str = Membership.Role.MEMBER) -> APIClient:
    user = get_user_model().objects.create_user(username=f"u-{uuid.uuid4().hex[:8]}", password="x" * 12)
    Membership.objects.create(user=user, tenant=tenant, role=role)
    client = APIClient()
    client.force_login(user)
    return client


def start_session(client: APIClient, text: str = "hello") -> str:
    response = client.post("/v1/session/message", {"message": text}, format="json")
    assert response.status_code == 202, response.content
    return str(response.json()["session_id"])


def test_members_see_only_their_own_sessions_everywhere() -> None:
    tenant = Tenant.objects.create(name=f"t-{uuid.uuid4().hex[:8]}")
    alice, bob = user_in(tenant), user_in(tenant)
    mine = start_session(alice)
    assert Session.objects.get(pk=mine).created_by is not None

    listed = [s["session_id"] for s in bob.get("/v1/sessions").json()["sessions"]]
    assert mine not in listed
    for method, path in [
        ("get", f"/v1/sessions/{mine}"),
        ("get", f"/v1/sessions/{mine}/events"),
        ("post", f"/v1/sessions/{mine}/cancel"),
        ("delete", f"/v1/sessions/{mine}"),
        ("get", f"/v1/sessions/{mine}/stream"),
    ]:
        assert getattr(bob, method)(path).status_code == 404, (method, path)
    answer = bob.post("/v1/session/message", {"message": "hi", "session_id": mine}, format="json")
    assert answer.status_code == 404
    assert Session.objects.filter(pk=mine).exists()
    assert [s["session_id"] for s in alice.get("/v1/sessions").json()["sessions"]] == [mine]


def test_tenant_admins_and_api_keys_see_every_session_of_the_tenant() -> None:
    tenant = Tenant.objects.create(name=f"t-{uuid.uuid4().hex[:8]}")
    mine = start_session(user_in(tenant))
    admin = user_in(tenant, role=Membership.Role.ADMIN)
    assert admin.get(f"/v1/sessions/{mine}").status_code == 200
    _, raw = api_key_create(tenant=tenant, name="integration")
    integration = APIClient()
    integration.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert integration.get(f"/v1/sessions/{mine}").status_code == 200
