"""Budget periods: the UTC day and the UTC calendar month."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class Period:
    kind: str  # "day" or "month"
    label: str  # d20260115 or m202601: the counter key's last part
    start: datetime
    end: datetime

    def seconds_left(self, now: datetime | None = None) -> int:
        now = now or datetime.now(UTC)
        return max(1, math.ceil((self.end - now).total_seconds()))

    def ttl(self, now: datetime | None = None) -> int:
        """Counters outlive their period by a day, then Redis drops them."""
        return self.seconds_left(now) + 86400


def current_periods(now: datetime | None = None) -> tuple[Period, Period]:
    now = (now or datetime.now(UTC)).astimezone(UTC)
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month_start = day_start.replace(day=1)
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    return (
        Period("day", f"d{day_start:%Y%m%d}", day_start, day_start + timedelta(days=1)),
        Period("month", f"m{month_start:%Y%m}", month_start, next_month),
    )
