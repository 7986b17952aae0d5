"""The per-tool, per-tenant circuit breaker on the real Redis."""

from __future__ import annotations

import uuid

from tests.tools.conftest import tool_settings
from tools.breaker import breaker_open_for, breaker_record


def test_opens_after_consecutive_failures_and_only_for_that_tenant() -> None:
    tenant, other = uuid.uuid4(), uuid.uuid4()
    with tool_settings(breaker_failures=3, breaker_open_seconds=30):
        for _ in range(2):
            breaker_record(tool="web_search", tenant_id=tenant, ok=False)
        assert breaker_open_for(tool="web_search", tenant_id=tenant) is None
        breaker_record(tool="web_search", tenant_id=tenant, ok=False)
        wait = breaker_open_for(tool="web_search", tenant_id=tenant)
        assert wait is not None and 0 < wait <= 30
        assert breaker_open_for(tool="web_search", tenant_id=other) is None
        assert breaker_open_for(tool="python", tenant_id=tenant) is None


def test_a_success_resets_the_count() -> None:
    tenant = uuid.uuid4()
    with tool_settings(breaker_failures=2, breaker_open_seconds=30):
        breaker_record(tool="python", tenant_id=tenant, ok=False)
        breaker_record(tool="python", tenant_id=tenant, ok=True)
        breaker_record(tool="python", tenant_id=tenant, ok=False)
        assert breaker_open_for(tool="python", tenant_id=tenant) is None


def test_half_open_a_failure_after_the_pause_opens_it_again_at_once() -> None:
    from somaagent.redis_client import key, sync_redis

    tenant = uuid.uuid4()
    with tool_settings(breaker_failures=2, breaker_open_seconds=30):
        breaker_record(tool="python", tenant_id=tenant, ok=False)
        breaker_record(tool="python", tenant_id=tenant, ok=False)
        sync_redis().delete(key("toolbreaker", "python", tenant, "open"))  # the pause is over
        assert breaker_open_for(tool="python", tenant_id=tenant) is None
        breaker_record(tool="python", tenant_id=tenant, ok=False)
        assert breaker_open_for(tool="python", tenant_id=tenant) is not None
