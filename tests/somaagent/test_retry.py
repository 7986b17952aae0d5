"""One retry schedule for every client (1 s doubling to 60 s, jittered, never sooner than
Retry-After) and one reading of Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from somaagent.retry import backoff_delay, parse_retry_after


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
