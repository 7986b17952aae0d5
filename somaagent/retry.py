"""Waiting before trying again: one reading of ``Retry-After`` and one backoff for every client.

Used by the model client, the memory service client and its delivery, the outbox,
the web search tool and the OPA client, so that each honours the same header forms
and spreads its retries the same way.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def parse_retry_after(raw: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    None when absent or unreadable (``NaN`` and ``inf`` included); a date in the
    past, or a negative number, is 0.
    """
    if not raw:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff_delay(
    attempt: int,
    *,
    base: float = 1.0,
    cap: float = 60.0,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds before the try after failure number ``attempt`` (1-based): ``base`` doubling per
    failure up to ``cap``, jittered into [half, full] so that clients failing together do not
    retry together, and never sooner than the service's ``Retry-After``."""
    nominal = min(cap, base * 2 ** min(max(0, attempt - 1), 62))  # no float overflow
    delay = nominal * (rng or random).uniform(0.5, 1.0)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
