"""Values cached per version: read once per version, a change applies within the freshness period."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import redis
from django.db import transaction

from somaagent.models import Budget, Tenant
from somaagent.versioned import Versioned

pytestmark = pytest.mark.django_db(transaction=True)


def _counting(name: str, *, fresh_for: float) -> tuple[Versioned[Any], list[Any]]:
    reads: list[Any] = []

    def load(scope: Any) -> Any:
        reads.append(scope)
        return list(Budget.objects.filter(tenant_id=scope).values_list("daily_tokens", flat=True))

    return Versioned(f"{name}-{uuid.uuid4().hex[:6]}", load, fresh_for=fresh_for), reads


def test_the_database_is_read_once_per_version_and_a_bump_is_seen_after_the_freshness_period() -> None:
    tenant = Tenant.objects.create(name=f"v{uuid.uuid4().hex[:8]}")
    cache, reads = _counting("budgets", fresh_for=0.3)
    assert cache.get(str(tenant.pk)) == [] and cache.get(str(tenant.pk)) == []
    assert len(reads) == 1, "a fresh value is served from memory"
    time.sleep(0.35)
    assert cache.get(str(tenant.pk)) == [] and len(reads) == 1, "same version in Redis: not read again"

    Budget.objects.create(tenant=tenant, daily_tokens=50)
    with transaction.atomic():
        cache.bump(str(tenant.pk))  # what the post_save receiver does for the real caches
    # Another process's copy stays until its freshness period ends, then follows the version.
    time.sleep(0.35)
    assert cache.get(str(tenant.pk)) == [50] and len(reads) == 2


def test_a_change_inside_an_open_transaction_is_read_from_the_database_until_it_commits() -> None:
    tenant = Tenant.objects.create(name=f"v{uuid.uuid4().hex[:8]}")
    cache, reads = _counting("budgets", fresh_for=60)
    assert cache.get(str(tenant.pk)) == []
    with transaction.atomic():
        Budget.objects.create(tenant=tenant, daily_tokens=7)
        cache.bump(str(tenant.pk))
        assert cache.get(str(tenant.pk)) == [7], "this process sees its own change at once"
    assert cache.get(str(tenant.pk)) == [7]
    after_commit = len(reads)
    assert cache.get(str(tenant.pk)) == [7] and len(reads) == after_commit, "cached again once committed"


def test_a_rolled_back_change_does_not_leave_the_cache_reading_the_database() -> None:
    tenant = Tenant.objects.create(name=f"v{uuid.uuid4().hex[:8]}")
    cache, reads = _counting("budgets", fresh_for=60)
    assert cache.get(str(tenant.pk)) == []
    with pytest.raises(RuntimeError), transaction.atomic():
        Budget.objects.create(tenant=tenant, daily_tokens=7)
        cache.bump(str(tenant.pk))
        raise RuntimeError("the admin form failed after the save")
    assert cache.get(str(tenant.pk)) == []
    settled = len(reads)
    assert cache.get(str(tenant.pk)) == [] and len(reads) == settled, "cached again after the rollback"


def test_another_threads_open_change_does_not_stop_this_thread_using_its_cache() -> None:
    import threading

    tenant = Tenant.objects.create(name=f"v{uuid.uuid4().hex[:8]}")
    cache, reads = _counting("budgets", fresh_for=60)
    assert cache.get(str(tenant.pk)) == []
    with transaction.atomic():
        cache.bump(str(tenant.pk))
        before = len(reads)
        seen: list[Any] = []

        def twice() -> None:
            seen.extend([cache.get(str(tenant.pk)), cache.get(str(tenant.pk))])

        other = threading.Thread(target=twice)
        other.start()
        other.join()
        assert seen == [[], []] and len(reads) <= before + 1, "the other thread caches the committed value"


def test_saving_a_budget_announces_it_to_the_real_cache() -> None:
    from somaagent.budgets.services import budget_counters

    tenant = Tenant.objects.create(name=f"v{uuid.uuid4().hex[:8]}")
    assert [c.limit for c in budget_counters(tenant_id=tenant.pk, persona_id=None)] == [None, None]
    Budget.objects.create(tenant=tenant, daily_tokens=10, monthly_tokens=20)  # no service call
    assert [c.limit for c in budget_counters(tenant_id=tenant.pk, persona_id=None)] == [10, 20]


def test_without_redis_the_database_is_read_every_time(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    tenant = Tenant.objects.create(name=f"v{uuid.uuid4().hex[:8]}")
    cache, reads = _counting("budgets", fresh_for=0)

    def down() -> Any:
        raise redis.ConnectionError("down")

    monkeypatch.setattr("somaagent.versioned.sync_redis", down)
    cache.get(str(tenant.pk))
    cache.get(str(tenant.pk))
    assert len(reads) == 2, "a value that cannot be checked is never trusted"
