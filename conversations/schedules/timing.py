"""When a schedule is due: cron expressions (parsed by Celery's ``crontab``, as django-celery-beat
does) or fixed intervals, in the schedule's time zone, to the next due time after a moment.

Cron follows the usual convention: ``minute hour day-of-month month day-of-week``; when both
day fields are restricted, a day matching either is due (as in Vixie cron). Times are wall-clock
times in the zone: 09:00 stays 09:00 across daylight-saving changes; a wall time that does not
exist that day (skipped by a spring-forward) is not due that day, and one that happens twice (a
fall-back) is due once, the first time.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celery.schedules import ParseException, crontab

from somaagent.errors import ValidationFailed

SEARCH_DAYS = 366 * 5  # a cron that matches nothing in five years (Feb 30th) never does


@functools.lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValidationFailed(f"Unknown time zone {name!r}; use an IANA name like Europe/Paris.") from None


@dataclass(frozen=True)
class Cron:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]  # 0 = Sunday
    dom_any: bool
    dow_any: bool

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days_of_month
        dow = (day.weekday() + 1) % 7 in self.days_of_week
        if self.dom_any and self.dow_any:
            return True
        if self.dom_any:
            return dow
        if self.dow_any:
            return dom
        return dom or dow


@functools.lru_cache(maxsize=4096)
def cron_parse(expression: str) -> Cron:
    fields = expression.split() if isinstance(expression, str) else []
    if len(fields) != 5:
        raise ValidationFailed(
            "cron must have five fields: minute hour day-of-month month day-of-week (e.g. '0 9 * * mon-fri')."
        )
    minute, hour, dom, month, dow = fields
    try:
        parsed = crontab(minute=minute, hour=hour, day_of_month=dom, month_of_year=month, day_of_week=dow)
    except (ParseException, ValueError, TypeError) as exc:
        raise ValidationFailed(f"Not a valid cron expression: {exc}.", details={"cron": expression}) from None
    return Cron(
        minutes=tuple(sorted(parsed.minute)),
        hours=tuple(sorted(parsed.hour)),
        days_of_month=frozenset(parsed.day_of_month),
        months=frozenset(parsed.month_of_year),
        days_of_week=frozenset(parsed.day_of_week),
        dom_any=set(parsed.day_of_month) >= set(range(1, 32)),
        dow_any=set(parsed.day_of_week) >= set(range(7)),
    )


def _wall_time(day: date, hour: int, minute: int, tz: ZoneInfo) -> datetime | None:
    """The moment of that wall-clock time in ``tz``; None when the day skips it."""
    local = datetime.combine(day, time(hour, minute), tzinfo=tz)  # fold=0: the first of two
    back = local.astimezone(UTC).astimezone(tz)
    if (back.hour, back.minute) != (hour, minute):
        return None  # inside a spring-forward gap
    return local.astimezone(UTC)


def cron_next(cron: Cron, tz: ZoneInfo, after: datetime) -> datetime | None:
    """The first due time strictly after ``after``, or None if there is none within five years."""
    start = after.astimezone(tz)
    for offset in range(SEARCH_DAYS):
        day = start.date() + timedelta(days=offset)
        if not cron.day_matches(day):
            continue
        for hour in cron.hours:
            if offset == 0 and hour < start.hour - 1:
                continue  # earlier that day (an hour's margin for a clock change)
            for minute in cron.minutes:
                moment = _wall_time(day, hour, minute, tz)
                if moment is not None and moment > after:
                    return moment
    return None


def interval_next(anchor: datetime, seconds: float, after: datetime) -> datetime:
    """The first of ``anchor + k * seconds`` (k ≥ 0) strictly after ``after``."""
    if after < anchor:
        return anchor
    steps = math.floor((after - anchor).total_seconds() / seconds) + 1
    return anchor + timedelta(seconds=steps * seconds)
