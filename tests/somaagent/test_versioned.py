"""Values cached per version: read once per version, a change applies within the freshness period."""

from __future__ import annotations

import threading
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


def test_a_rolled_back_change_does_not_leave_the_next_transaction_reading_the_database() -> None:
    """The thread goes from the rolled-back transaction straight into another one (a worker's
    next task, the next test): the next one uses the cache."""
    tenant = Tenant.objects.create(name=f"v{uuid.uuid4().hex[:8]}")
    cache, reads = _counting("budgets", fresh_for=60)
    assert cache.get(str(tenant.pk)) == []
    with pytest.raises(RuntimeError), transaction.atomic():
        cache.bump(str(tenant.pk))
        raise RuntimeError("rolled back")
    with transaction.atomic():
        cache.get(str(tenant.pk))
        settled = len(reads)
        assert cache.get(str(tenant.pk)) == [] and len(reads) == settled, "the next one uses the cache"


def test_another_threads_open_change_does_not_stop_this_thread_using_its_cache() -> None:
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


def test_without_redis_the_database_is_read_every_time(monkeypatch) -> None:
    tenant = Tenant.objects.create(name=f"v{uuid.uuid4().hex[:8]}")
    cache, reads = _counting("budgets", fresh_for=0)

    def down() -> Any:
        raise redis.ConnectionError("down")

    monkeypatch.setattr("somaagent.versioned.sync_redis", down)
    cache.get(str(tenant.pk))
    cache.get(str(tenant.pk))
    assert len(reads) == 2, "a value that cannot be checked is never trusted"


def test_threads_asking_at_once_for_a_value_not_yet_held_read_it_once() -> None:
    """A burst for one key in a new process: one thread reads, the others take its answer."""
    reads: list[Any] = []
    started = threading.Barrier(20)

    def load(scope: Any) -> Any:
        reads.append(scope)
        time.sleep(0.1)  # a database read long enough for every other thread to arrive
        return f"value of {scope}"

    cache: Versioned[Any] = Versioned(f"herd-{uuid.uuid4().hex[:6]}", load, fresh_for=60)
    answers: list[Any] = []

    def ask() -> None:
        started.wait()
        answers.append(cache.get("k"))

    threads = [threading.Thread(target=ask) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == ["value of k"] * 20
    assert reads == ["k"], f"read {len(reads)} times"


def test_a_reader_does_not_wait_long_for_a_refresh_that_is_stuck() -> None:
    """Another thread's refresh that hangs (e.g. queued for a pooled connection) delays a
    reader of the same scope by the bounded wait only; it then reads for itself."""
    release = threading.Event()
    calls: list[str] = []

    def load(scope: Any) -> Any:
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            release.wait(5)
        return "v"

    cache: Versioned[Any] = Versioned(f"stuck-{uuid.uuid4().hex[:6]}", load, fresh_for=60)
    stuck = threading.Thread(target=cache.get, args=("k",), name="stuck")
    stuck.start()
    while not calls:
        time.sleep(0.01)
    began = time.monotonic()
    assert cache.get("k") == "v"
    waited = time.monotonic() - began
    release.set()
    stuck.join()
    assert len(calls) == 2, "the second reader read for itself"
    assert waited < 3, f"waited {waited:.1f} s behind a stuck refresh"
