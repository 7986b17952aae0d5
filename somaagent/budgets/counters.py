"""Budget counters in Redis: atomic reserve-against-limits and settle, rebuilt from the usage table.

A counter holds the tokens used plus the tokens reserved by running turns in
one period for one scope (the whole tenant, ``all``, or one persona). The
reserve script checks every applicable limit and increments every counter in
one atomic step, so parallel turns cannot together pass a limit; a turn's
reservation is remembered under its id, which makes reserving idempotent (a
restarted turn does not reserve twice) and lets settling replace exactly it.
A counter that is missing (Redis restarted, evicted, or a new period) is
rebuilt from ``token_usage`` with ``SET NX``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Sum

from somaagent.budgets.periods import Period
from somaagent.models import TokenUsage
from somaagent.redis_client import key, sync_redis

ALL = "all"
RESERVATION_TTL = 2 * 86400
MISSING = 2

# Check every counter (KEYS[2:]) against its limit, then add ``amount`` to all of them:
# the part the reservation and its extension share.
_CHECK_AND_ADD = """
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then return {2, i - 1, 0} end
end
for i = 2, #KEYS do
  local limit = tonumber(ARGV[4 + 2 * (i - 2)])
  if limit >= 0 then
    local used = tonumber(redis.call('GET', KEYS[i]))
    if used + amount > limit then return {0, i - 1, used} end
  end
end
for i = 2, #KEYS do
  redis.call('INCRBY', KEYS[i], amount)
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[5 + 2 * (i - 2)]))
end
"""

RESERVE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {1, 0, 0} end
local amount = tonumber(ARGV[1])
"""
RESERVE += (
    _CHECK_AND_ADD
    + """redis.call('SET', KEYS[1], ARGV[3], 'EX', tonumber(ARGV[2]))
return {1, 1, 0}
"""
)

# Grow a turn's reservation by ARGV[1] (another model round): every limit is checked
# first, then every counter and the reservation's amount grow together.
EXTEND = """
local amount = tonumber(ARGV[1])
"""
EXTEND += (
    _CHECK_AND_ADD
    + """local raw = redis.call('GET', KEYS[1])
local meta = raw and cjson.decode(raw) or cjson.decode(ARGV[3])
meta['amount'] = (tonumber(meta['amount']) or 0) + amount
redis.call('SET', KEYS[1], cjson.encode(meta), 'EX', tonumber(ARGV[2]))
return {1, 1, 0}
"""
)

SETTLE = """
local actual = tonumber(ARGV[1])
local raw = redis.call('GET', KEYS[1])
local reserved = 0
local keys = {}
if raw then
  local meta = cjson.decode(raw)
  reserved = tonumber(meta['amount'])
  keys = meta['keys']
else
  for i = 2, #KEYS do keys[#keys + 1] = KEYS[i] end
end
for _, k in ipairs(keys) do
  if redis.call('EXISTS', k) == 1 then redis.call('INCRBY', k, actual - reserved) end
end
redis.call('DEL', KEYS[1])
return reserved
"""


@dataclass(frozen=True)
class Counter:
    tenant_id: str
    persona: str  # ALL or a persona id
    period: Period
    limit: int | None

    @property
    def key(self) -> str:
        return key("budget", "tokens", self.tenant_id, self.persona, self.period.label)

    @property
    def scope(self) -> str:
        return "tenant" if self.persona == ALL else "persona"


@dataclass(frozen=True)
class Refusal:
    counter: Counter
    used: int


def reservation_key(turn_id: Any) -> str:
    return key("budget", "reservation", turn_id)


def used_in_database(counter: Counter) -> int:
    rows = TokenUsage.objects.filter(
        tenant_id=counter.tenant_id,
        created_at__gte=counter.period.start,
        created_at__lt=counter.period.end,
    )
    if counter.persona != ALL:
        rows = rows.filter(persona_id=counter.persona)
    return int(rows.aggregate(total=Sum("total_tokens"))["total"] or 0)


def rebuild_missing(counters: list[Counter], now: datetime | None = None) -> None:
    client = sync_redis()
    exists = client.pipeline(transaction=False)
    for counter in counters:
        exists.exists(counter.key)
    for counter, present in zip(counters, exists.execute(), strict=True):
        if not present:
            client.set(counter.key, used_in_database(counter), nx=True, ex=counter.period.ttl(now))


def read_used(counters: list[Counter]) -> list[int]:
    rebuild_missing(counters)
    values = sync_redis().mget([c.key for c in counters])
    return [int(v or 0) for v in values]


def reserve(
    *, turn_id: Any, counters: list[Counter], amount: int, meta: dict[str, Any] | None = None
) -> Refusal | None:
    """Reserve ``amount`` on every counter, or none if one limit has no room; idempotent per turn."""
    return _run_reservation(RESERVE, turn_id, counters, amount, {**(meta or {}), "amount": amount})


def extend(
    *, turn_id: Any, counters: list[Counter], amount: int, meta: dict[str, Any] | None = None
) -> Refusal | None:
    """Grow the turn's reservation by ``amount`` on every counter, or not at all if a limit has no
    room (a later model round of the same turn). Not idempotent: call it once per round."""
    return _run_reservation(EXTEND, turn_id, counters, amount, {**(meta or {}), "amount": 0})


def _run_reservation(
    lua: str, turn_id: Any, counters: list[Counter], amount: int, doc: dict[str, Any]
) -> Refusal | None:
    """Run a reservation script over the counters; counters Redis lost are rebuilt and it runs again."""
    args: list[Any] = [amount, RESERVATION_TTL, json.dumps({**doc, "keys": [c.key for c in counters]})]
    for counter in counters:
        args += [counter.limit if counter.limit is not None else -1, counter.period.ttl()]
    script = sync_redis().register_script(lua)
    for _ in range(3):
        status, index, used = script(keys=[reservation_key(turn_id), *[c.key for c in counters]], args=args)
        if status == MISSING:
            rebuild_missing(counters)
            continue
        if status == 0:
            return Refusal(counter=counters[int(index) - 1], used=int(used))
        return None
    raise RuntimeError("budget counters keep disappearing from Redis")


def reservation_of(turn_id: Any) -> dict[str, Any] | None:
    raw = sync_redis().get(reservation_key(turn_id))
    return json.loads(raw) if raw else None


def settle(*, turn_id: Any, counters: list[Counter], actual: int) -> int:
    """Replace the turn's reservation by ``actual``; returns what had been reserved (0 if none)."""
    script = sync_redis().register_script(SETTLE)
    return int(script(keys=[reservation_key(turn_id), *[c.key for c in counters]], args=[actual]))
