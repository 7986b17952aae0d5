"""Fixtures for the core's tests: tenants with keys of chosen scopes, users, an OPA stub, the policy port."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from rest_framework.test import APIClient

from tests.live import StubServer


def new_tenant(name: str | None = None) -> Any:
    from somaagent.models import Tenant

    return Tenant.objects.create(name=name or f"t-{uuid.uuid4().hex[:10]}")


def new_key(tenant: Any, scopes: list[str] | None = None, **kwargs: Any) -> tuple[Any, str]:
    from somaagent.identity.apikeys import api_key_create

    return api_key_create(tenant=tenant, name="test", scopes=scopes or [], **kwargs)


def client_for(raw_key: str | None = None, *, token: str | None = None) -> APIClient:
    client = APIClient()
    credential = raw_key or token
    if credential:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {credential}")
    return client


def new_user(username: str | None = None, *, password: str = "pw-Secret-123", **flags: Any) -> Any:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(
        username=username or f"u-{uuid.uuid4().hex[:8]}", password=password, **flags
    )
    return user


def member(user: Any, tenant: Any, role: str = "member") -> Any:
    from somaagent.models import Membership

    return Membership.objects.create(user=user, tenant=tenant, role=role)


@pytest.fixture(scope="session")
def opa_stub() -> Iterator[StubServer]:
    server = StubServer("tests.stubs.opa_server")
    yield server
    server.stop()


@pytest.fixture
def opa(opa_stub: StubServer) -> Iterator[StubServer]:
    """The OPA stub, healthy and empty at the start of each test."""
    httpx.post(f"{opa_stub.url}/_fail", json={"status": 0})
    httpx.post(f"{opa_stub.url}/_reset")
    yield opa_stub
    httpx.post(f"{opa_stub.url}/_fail", json={"status": 0})


@pytest.fixture
def use_opa(settings: Any) -> Iterator[Any]:
    """Switch the policy port to the remote adapter at ``url`` for one test."""
    from somaagent.policy.port import policy_port

    def switch(url: str) -> None:
        settings.SOMA = dataclasses.replace(settings.SOMA, opa_url=url, opa_timeout_seconds=1.0)
        policy_port.cache_clear()

    yield switch
    policy_port.cache_clear()
