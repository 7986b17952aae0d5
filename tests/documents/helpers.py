"""Clients for document tests: members, admins and API keys of a tenant."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from somaagent.identity.apikeys import api_key_create
from somaagent.models import Membership, Tenant


def new_tenant() -> Tenant:
    return Tenant.objects.create(name=f"t-{uuid.uuid4().hex[:8]}")


def member(tenant: Tenant, role: str = Membership.Role.MEMBER) -> APIClient:
    user = get_user_model().objects.create_user(username=f"u-{uuid.uuid4().hex[:8]}", password="x" * 12)
    Membership.objects.create(user=user, tenant=tenant, role=role)
    client = APIClient()
    client.force_login(user)
    client.user = user  # type: ignore[attr-defined]
    return client


def key_client(tenant: Tenant, scopes: list[str] | None = None) -> APIClient:
    _, raw = api_key_create(
        tenant=tenant,
        name="test",
        scopes=scopes or ["admin", "conversations:read", "conversations:write", "attachments:write"],
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def create_collection(client: APIClient, name: str = "Handbook", **body: Any) -> str:
    r = client.post("/v1/collections", {"name": name, **body}, format="json")
    assert r.status_code == 201, r.content
    return str(r.json()["collection_id"])


def upload(client: APIClient, collection_id: str, name: str, content: bytes, mime: str = "text/plain") -> Any:
    return client.post(
        f"/v1/collections/{collection_id}/documents",
        {"file": SimpleUploadedFile(name, content, content_type=mime)},
    )
