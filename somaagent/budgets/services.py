"""Budget use cases: set limits, check at the gateway, reserve before a model call, settle after."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import redis
from django.db import transaction

from somaagent.audit import Actor, audit_record
from somaagent.budgets import counters as cnt
from somaagent.budgets.counters import ALL, Counter
from somaagent.budgets.periods import current_periods
from somaagent.errors import BudgetExceeded, BudgetUnavailable, ValidationFailed
from somaagent.models import AuditLog, Budget, Persona, Tenant, TokenUsage
from somaagent.sql import insert_objects
from somaagent.tokens import tokens_of_chars
from somaagent.versioned import Versioned

log = logging.getLogger(__name__)


def _counters(
    tenant_id: Any, scopes: list[str], budgets: dict[str, Budget], now: datetime | None = None
) -> list[Counter]:
    """A day and a month counter per scope, limited by that scope's budget row (none: no limit)."""
    day, month = current_periods(now)
    result = []
    for scope in scopes:
        budget = budgets.get(scope)
        result.append(Counter(str(tenant_id), scope, day, budget.daily_tokens if budget else None))
        result.append(Counter(str(tenant_id), scope, month, budget.monthly_tokens if budget else None))
    return result


def _charged_scopes(persona_id: str | None) -> list[str]:
    return [ALL, persona_id] if persona_id else [ALL]


def _tenant_budgets(tenant_id: Any) -> dict[str, Budget]:
    """The tenant's budget rows by scope (``all`` or a persona id)."""
    # order_by(): the model's ordering (tenant and persona names) would join two tables here.
    rows = Budget.objects.filter(tenant_id=tenant_id).order_by()
    return {str(b.persona_id) if b.persona_id else ALL: b for b in rows}


# Read at every accept and every turn: once per version per process.
_budgets = Versioned("budgets", _tenant_budgets)


def budgets_changed(budget: Budget) -> None:
    """A budget row was saved or deleted (connected in ``somaagent.apps``)."""
    _budgets.bump(str(budget.tenant_id))


def budget_counters(*, tenant_id: Any, persona_id: Any, now: datetime | None = None) -> list[Counter]:
    """Counters a turn of this tenant/persona is charged to: the tenant's, and the persona's if any."""
    tenant_id = str(tenant_id)
    persona_id = str(persona_id) if persona_id else None
    scopes = _charged_scopes(persona_id)
    budgets = _budgets.get(tenant_id)
    return _counters(tenant_id, scopes, {s: budgets[s] for s in scopes if s in budgets}, now)


def budget_row_counters(budget: Budget, now: datetime | None = None) -> list[Counter]:
    """The day and month counters of one budget row's scope, limited by the row itself (no query)."""
    scope = str(budget.persona_id) if budget.persona_id else ALL
    return _counters(budget.tenant_id, [scope], {scope: budget}, now)


def _exceeded(counter: Counter, used: int) -> BudgetExceeded:
    period = "daily" if counter.period.kind == "day" else "monthly"
    return BudgetExceeded(
        f"The {counter.scope}'s {period} token budget is used up; it resets at "
        f"{counter.period.end:%Y-%m-%d %H:%M} UTC.",
        retry_after=counter.period.seconds_left(),
        details={
            "scope": counter.scope,
            "period": counter.period.kind,
            "limit": counter.limit,
            "used": used,
            "resets_at": counter.period.end.isoformat(),
        },
    )


def _check(counters: list[Counter], used: list[int], amount: int) -> None:
    for counter, value in zip(counters, used, strict=True):
        if counter.limit is not None and value + amount > counter.limit:
            raise _exceeded(counter, value)


def budget_check(*, tenant_id: Any, persona_id: Any, estimate: int) -> None:
    """Raise BudgetExceeded (429) when a limit has no room for ``estimate`` more tokens."""
    limited = [c for c in budget_counters(tenant_id=tenant_id, persona_id=persona_id) if c.limit is not None]
    if not limited:
        return
    try:
        used = cnt.read_used(limited)
    except redis.RedisError as exc:
        log.warning("budget counters unavailable; refusing", exc_info=True)
        raise BudgetUnavailable() from exc
    _check(limited, used, estimate)


def budget_reserve(
    *,
    turn_id: Any,
    tenant_id: Any,
    persona_id: Any,
    prompt_tokens: int,
    completion_tokens: int,
    more: bool = False,
) -> None:
    """Reserve the estimate of one model call before making it; BudgetExceeded if it does not fit.

    The turn's first call reserves (idempotently: a restarted turn does not reserve twice);
    each later call of the same turn (``more``: another round after tool results) grows
    the reservation by its own estimate. Settling at the end replaces the whole of it by
    what was really used.
    """
    counters = budget_counters(tenant_id=tenant_id, persona_id=persona_id)
    amount = prompt_tokens + completion_tokens
    meta = {"prompt": prompt_tokens, "tenant": str(tenant_id), "persona": str(persona_id or "")}
    take = cnt.extend if more else cnt.reserve
    try:
        refusal = take(turn_id=turn_id, counters=counters, amount=amount, meta=meta)
    except redis.RedisError as exc:
        if any(c.limit is not None for c in counters):
            # The usage table knows what was settled, not what running replies reserved:
            # going by it would let parallel turns overspend. Refused until Redis is back.
            log.warning("budget counters unavailable; refusing", exc_info=True)
            raise BudgetUnavailable() from exc
        log.warning("budget counters unavailable; no limit to check", exc_info=True)
        return
    if refusal is not None:
        raise _exceeded(refusal.counter, refusal.used)


def turn_usage_record(
    *,
    turn_id: Any,
    tenant_id: Any,
    persona_id: Any,
    session_id: Any,
    model: str,
    usage: dict[str, int] | None,
    event_type: str,
    partial: str = "",
) -> None:
    """At the end of a turn: store its token usage and, after commit, settle its reservation.

    A final answer is charged what the model reported; a reply cancelled or
    failed after the model was called, what it must have read and written.
    """
    try:
        reservation = cnt.reservation_of(turn_id)
    except redis.RedisError:
        reservation = None
    if event_type == "assistant.final" and usage:
        prompt, completion, estimated = (
            int(usage.get("prompt_tokens", 0)),
            int(usage.get("completion_tokens", 0)),
            False,
        )
    elif reservation is not None:
        prompt = int(reservation.get("prompt", 0)) if (partial or event_type == "assistant.cancelled") else 0
        completion, estimated = (tokens_of_chars(len(partial)) if partial else 0), True
    else:
        return
    tenant_id = str(tenant_id)
    persona = (reservation or {}).get("persona") or (str(persona_id) if persona_id else None)
    total = prompt + completion
    if total:
        # One INSERT … ON CONFLICT DO NOTHING: a turn's usage is stored once, the first record wins.
        insert_objects(
            [
                TokenUsage(
                    turn_id=turn_id,
                    tenant_id=tenant_id,
                    persona_id=persona or None,
                    session_id=session_id,
                    model=model,
                    prompt_tokens=prompt,
                    completion_tokens=completion,
                    total_tokens=total,
                    estimated=estimated,
                )
            ],
            ignore_conflicts=True,
        )
    transaction.on_commit(lambda: _settle(turn_id, tenant_id, persona, total))


def _settle(turn_id: Any, tenant_id: str, persona_id: str | None, total: int) -> None:
    try:
        # Settling needs the counters' keys, not their limits: no Budget query here.
        counters = _counters(tenant_id, _charged_scopes(persona_id), {})
        cnt.settle(turn_id=turn_id, counters=counters, actual=total)
    except redis.RedisError:
        log.warning("could not settle a budget reservation", extra={"turn_id": str(turn_id)}, exc_info=True)


def _limit(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationFailed(f"{name} must be a non-negative integer or empty.", details={name: value})
    return value


def budget_set(
    *,
    tenant: Tenant,
    persona: Persona | None = None,
    daily_tokens: int | None,
    monthly_tokens: int | None,
    actor: Actor,
) -> Budget:
    """Create or change a budget (None = no limit for that period), and audit the change."""
    daily = _limit(daily_tokens, "daily_tokens")
    monthly = _limit(monthly_tokens, "monthly_tokens")
    if persona is not None and persona.tenant_id != tenant.pk:
        raise ValidationFailed(
            "That persona belongs to another tenant.", details={"persona": str(persona.pk)}
        )
    with transaction.atomic():
        budget = (
            Budget.objects.select_for_update(of=("self",))
            .filter(tenant=tenant, persona=persona)
            .order_by("pk")
            .first()
        )
        before = (
            None
            if budget is None
            else {"daily_tokens": budget.daily_tokens, "monthly_tokens": budget.monthly_tokens}
        )
        if budget is None:
            budget = Budget(tenant=tenant, persona=persona)
        budget.daily_tokens, budget.monthly_tokens = daily, monthly
        budget.save()
        audit_record(
            actor=actor,
            action=AuditLog.Action.BUDGET_CHANGED,
            tenant=tenant,
            target=f"budget:{persona.pk if persona else 'tenant'}",
            details={"before": before, "after": {"daily_tokens": daily, "monthly_tokens": monthly}},
        )
    return budget


def budget_delete(*, budget: Budget, actor: Actor) -> None:
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=AuditLog.Action.BUDGET_CHANGED,
            tenant=budget.tenant,
            target=f"budget:{budget.persona_id or 'tenant'}",
            details={
                "before": {"daily_tokens": budget.daily_tokens, "monthly_tokens": budget.monthly_tokens},
                "after": None,
            },
        )
        budget.delete()
