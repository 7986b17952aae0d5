"""Feature flags: global values, tenant overrides, the process cache, Redis and the database."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from somaagent.flags import services as flag_services
from somaagent.flags.models import FeatureFlag
from somaagent.flags.services import flag_delete, flag_enabled, flag_set, flags_snapshot
from tests.conftest import make_tenant_key


@pytest.fixture(autouse=True)
def fresh_cache(settings) -> Iterator[None]:
    settings.SOMA_OPS = dataclasses.replace(settings.SOMA_OPS, flags_refresh_seconds=0)
    flag_services._cache.snapshot = None
    yield
    flag_services._cache.snapshot = None


def _name() -> str:
    return f"test.flag-{uuid.uuid4().hex[:8]}"


@pytest.mark.django_db(transaction=True)
def test_tenant_override_beats_the_global_value() -> None:
    name = _name()
    a: Any = make_tenant_key().tenant
    b: Any = make_tenant_key().tenant
    assert flag_enabled(name) is False and flag_enabled(name, default=True) is True
    flag_set(name=name, enabled=True)
    flag_set(name=name, enabled=False, tenant=a)
    assert flag_enabled(name) is True
    assert flag_enabled(name, a) is False
    assert flag_enabled(name, str(a.pk)) is False  # by id as well as by object
    assert flag_enabled(name, b) is True
    flag_set(name=name, enabled=False)
    flag_set(name=name, enabled=True, tenant=b)
    assert flag_enabled(name, b) is True and flag_enabled(name) is False
    assert flags_snapshot().active().count(f"{name}@{b.pk}") == 1
    assert flag_delete(name=name, tenant=b) == 1
    assert flag_enabled(name, b) is False
    assert FeatureFlag.objects.filter(name=name).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_process_keeps_its_snapshot_until_the_refresh_period_ends(settings) -> None:
    name = _name()
    flag_set(name=name, enabled=True)
    assert flag_enabled(name) is True
    settings.SOMA_OPS = dataclasses.replace(settings.SOMA_OPS, flags_refresh_seconds=3600)
    flag_set(name=name, enabled=False)
    assert flag_enabled(name) is True, "within the refresh period the process answers from memory"
    settings.SOMA_OPS = dataclasses.replace(settings.SOMA_OPS, flags_refresh_seconds=0)
    assert flag_enabled(name) is False


@pytest.mark.django_db(transaction=True)
def test_a_change_bumps_the_version_and_the_snapshot_is_shared_through_redis() -> None:
    name = _name()
    before = flags_snapshot().version
    flag_set(name=name, enabled=True)
    after = flags_snapshot()
    assert after.version == before + 1
    assert name in after.active()
    cached = flag_services.sync_redis().get(flag_services._snapshot_key(after.version))
    assert isinstance(cached, bytes) and name in cached.decode()


@pytest.mark.django_db(transaction=True)
def test_without_redis_flags_come_from_the_database(monkeypatch) -> None:
    from tests.live import free_port

    name = _name()
    FeatureFlag.objects.create(name=name, enabled=True)
    dead = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5)
    monkeypatch.setattr(flag_services, "sync_redis", lambda: dead)
    assert flag_enabled(name) is True


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_change_is_not_announced() -> None:
    from django.db import transaction

    version = flags_snapshot().version
    with pytest.raises(RuntimeError), transaction.atomic():
        flag_set(name=_name(), enabled=True)
        raise RuntimeError("abort")
    assert flags_snapshot().version == version
