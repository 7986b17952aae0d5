"""Fixtures of the in-process API tests: a tenant with a key (``me``) and a client sending it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import make_tenant_key
from tests.conversations.api_support import Api


@pytest.fixture
def me() -> Any:
    return make_tenant_key()


@pytest.fixture
def api(me: Any) -> Api:
    return Api(key=me.key)
