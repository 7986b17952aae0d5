"""Waiting before trying again: one reading of ``Retry-After`` and one backoff for every client.

Used by the model client, the memory service client and its delivery, the outbox,
the web search tool, the embeddings client and the OPA client, so that each honours the same header forms
and spreads its retries the same way.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Container
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx


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


@dataclass(frozen=True)
class HttpTries:
    """How a request tried with ``http_tries`` ended.

    ``final`` is the response to act on: a 200, or a status not worth repeating (the caller
    turns it into its own error). None when every try failed; ``error`` then says how the
    last one did, and ``out_of_time`` whether the deadline was what stopped them.
    """

    final: httpx.Response | None
    error: str
    out_of_time: bool


def http_tries(
    send: Callable[[httpx.Timeout], httpx.Response],
    *,
    service: str,
    timeout: float,
    attempts: int,
    base: float,
    cap: float,
    retried: Container[int] = frozenset({429}),
) -> HttpTries:
    """Send a request until it is answered 200 or not worth repeating, within ``timeout`` seconds.

    ``send(timeout)`` makes one request with what is left of the time. Timeouts, transport
    errors, 5xx and the ``retried`` statuses are tried again, after the jittered backoff
    (never sooner than the service's ``Retry-After``), while tries and time remain.
    ``service`` names the other side in the error ("the search service").
    """
    deadline = time.monotonic() + timeout
    error = "no attempt was made"
    for attempt in range(1, attempts + 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        wait: float | None = None
        try:
            response = send(httpx.Timeout(remaining, connect=min(remaining, 5.0)))
        except httpx.TimeoutException:
            error = f"{service} did not answer in time"
        except httpx.HTTPError as exc:
            error = f"{service} is unreachable ({exc.__class__.__name__})"
        else:
            if response.status_code == 200:
                return HttpTries(final=response, error="", out_of_time=False)
            error = f"{service} answered HTTP {response.status_code}"
            if response.status_code not in retried and response.status_code < 500:
                return HttpTries(final=response, error=error, out_of_time=False)
            wait = parse_retry_after(response.headers.get("retry-after"))
        if attempt < attempts:
            backoff = backoff_delay(attempt, base=base, cap=cap, retry_after=wait)
            if time.monotonic() + backoff >= deadline:
                break
            time.sleep(backoff)
    return HttpTries(final=None, error=error, out_of_time=time.monotonic() >= deadline)
