"""Fixtures of the single sign-on tests: sign-on turned on against the stub OpenID provider
(``oidc_stub``, in tests/conftest.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from tests.live import StubServer
from tests.somaagent.oidc.flow import Provider, oidc_settings


@pytest.fixture
def provider(oidc_stub: StubServer, settings: Any) -> Iterator[Provider]:
    """Single sign-on on, against a freshly reset stub, with nothing cached from another test."""
    from somaagent.identity.oidc.provider import forget_provider

    provider = Provider(oidc_stub)
    provider.control("/_reset")
    settings.SOMA_OIDC = oidc_settings(oidc_stub.url)
    # Refusals count against the address's login throttle; these tests refuse many from 127.0.0.1.
    settings.SOMA = dataclasses.replace(settings.SOMA, login_attempts_per_address_per_minute=100_000)
    forget_provider()
    yield provider
    forget_provider()
