"""One retry schedule for every client (1 s doubling to 60 s, jittered, never sooner than
Retry-After) and one reading of Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from somaagent.retry import backoff_delay, http_tries, parse_retry_after


@pytest.mark.parametrize(
    ("retry_count", "nominal"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 16.0), (6, 32.0), (7, 60.0), (8, 60.0), (30, 60.0)],
)
def test_delay_doubles_from_one_second_up_to_sixty(retry_count, nominal):
    rng = random.Random(retry_count)
    delays = [backoff_delay(retry_count, rng=rng) for _ in range(200)]
    assert all(nominal / 2 <= d <= nominal for d in delays)
    # jittered: not one fixed value, and spread over the range
    assert max(delays) - min(delays) > nominal / 4


def test_jitter_spreads_writes_that_failed_together():
    delays = {round(backoff_delay(5, rng=random.Random(seed)), 6) for seed in range(50)}
    assert len(delays) == 50


def test_retry_after_wins_when_longer_than_the_backoff():
    rng = random.Random(1)
    assert backoff_delay(1, retry_after=30.0, rng=rng) == 30.0
    assert backoff_delay(7, retry_after=300.0, rng=rng) == 300.0


def test_backoff_wins_when_retry_after_is_shorter():
    d = backoff_delay(6, retry_after=1.0, rng=random.Random(2))
    assert 16.0 <= d <= 32.0


def test_base_and_cap_come_from_settings():
    assert 5.0 <= backoff_delay(1, base=10.0, cap=20.0, rng=random.Random(3)) <= 10.0
    assert 10.0 <= backoff_delay(9, base=10.0, cap=20.0, rng=random.Random(3)) <= 20.0


def test_retry_after_header_in_seconds_or_as_a_date():
    now = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7", now=now) == 7.0
    assert parse_retry_after(" 2.5 ", now=now) == 2.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now=now) == 90.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=90), usegmt=True), now=now) == 0.0
    assert parse_retry_after("-3", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize("raw", ["nan", "NaN", "inf", "-inf", "1e400", "", "   ", "Thu, 99 Foo 2026"])
def test_an_unreadable_or_endless_retry_after_is_ignored(raw: str) -> None:
    """A hostile or broken server cannot make a client wait forever (inf) or compare with NaN."""
    assert parse_retry_after(raw) is None


def test_a_huge_failure_count_stays_at_the_cap() -> None:
    assert 30.0 <= backoff_delay(100_000, rng=random.Random(1)) <= 60.0


def _answers(*statuses: int | type[Exception]) -> tuple[list[httpx.Timeout], Any]:
    """A ``send`` that answers each try with the next status (or raises the next error)."""
    seen: list[httpx.Timeout] = []
    pending = list(statuses)

    def send(timeout: httpx.Timeout) -> httpx.Response:
        seen.append(timeout)
        answer = pending.pop(0)
        if isinstance(answer, int):
            return httpx.Response(answer, headers={"Retry-After": "0"})
        raise answer("boom")

    return seen, send


def test_http_tries_repeats_what_may_pass_and_stops_at_what_will_not() -> None:
    seen, send = _answers(503, httpx.ConnectError, 429, 200)
    tries = http_tries(send, service="the service", timeout=10, attempts=5, base=0.001, cap=0.001)
    assert tries.final is not None and tries.final.status_code == 200 and not tries.error
    assert len(seen) == 4

    seen, send = _answers(503, 404, 200)
    tries = http_tries(send, service="the service", timeout=10, attempts=5, base=0.001, cap=0.001)
    assert tries.final is not None and tries.final.status_code == 404
    assert tries.error == "the service answered HTTP 404" and len(seen) == 2


def test_http_tries_gives_up_after_its_tries_and_says_how_the_last_failed() -> None:
    seen, send = _answers(500, httpx.ReadTimeout)
    tries = http_tries(send, service="the service", timeout=10, attempts=2, base=0.001, cap=0.001)
    assert tries.final is None and not tries.out_of_time
    assert tries.error == "the service did not answer in time" and len(seen) == 2
    assert seen[1].read is not None and seen[1].read <= 10
