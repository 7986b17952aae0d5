"""Redis goes away under steady traffic and comes back empty; no process is restarted.

With a Redis server of the test's own (tests/servers.py) as the cache, stream
buffer and broker: while it is down every send answers within the bound with
503 ``rate_limit_unavailable`` with ``Retry-After`` (rate limits fail closed,
never open; a send that got past them before Redis went away is accepted, its
turn waiting in the outbox) — never a 500 or a hang; once it is back (without any of
its data: queues, buffers, counters) every message accepted before, during or
after the outage ends with exactly one terminal event, by the same processes.
"""

from __future__ import annotations

import pytest

from tests.conftest import make_tenant_key
from tests.conversations.outage_support import (
    assert_complaints_not_repeated,
    assert_each_ends_once,
    assert_outage_answers,
    assert_same_processes,
    outage_system,
    own_redis,
    pids,
    traffic_through,
)
from tests.live import TERMINAL

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _terminal_counts(turn_ids: list[str]) -> dict[str, int]:
    from conversations.models import SessionEvent, Turn

    return {
        str(turn["pk"]): SessionEvent.objects.filter(session_id=turn["session_id"], type__in=TERMINAL).count()
        for turn in Turn.objects.filter(pk__in=turn_ids).values("pk", "session_id")
    }


def test_a_redis_outage_is_refused_or_queued_and_nothing_accepted_is_lost(live_db: None) -> None:
    key = make_tenant_key().key
    with (
        own_redis() as redis_server,
        outage_system({"REDIS_URL": redis_server.url, "CELERY_BROKER_URL": ""}) as system,
    ):
        before = pids(system)
        # Redis comes back empty: its queues, buffers and counters are gone.
        answers, down_at, up_at = traffic_through(
            system, key, redis_server.stop, redis_server.start, before=3, away=10, after=8
        )
        # The rate limits cannot be checked while Redis is away: they refuse, never let through.
        accepted = assert_outage_answers(answers, code="rate_limit_unavailable", down_at=down_at, up_at=up_at)
        assert_each_ends_once(accepted, _terminal_counts)
        assert_complaints_not_repeated(system, most=3)
        assert_same_processes(system, before)
