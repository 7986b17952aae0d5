"""Reading budgets: limits with what is used (settled plus reserved by running replies)."""

from __future__ import annotations

from typing import Any

import redis

from somaagent.budgets import counters as cnt
from somaagent.budgets.services import budget_row_counters
from somaagent.models import Budget, Tenant


def budget_status(*, tenant: Tenant) -> dict[str, Any]:
    rows = list(Budget.objects.for_tenant(tenant).select_related("persona").order_by("persona__name"))
    if not any(b.persona_id is None for b in rows):
        rows.insert(0, Budget(tenant=tenant, persona=None))
    budgets = []
    for budget in rows:
        persona_id = str(budget.persona_id) if budget.persona_id else None
        counters = budget_row_counters(budget)
        try:
            used = cnt.read_used(counters)
        except redis.RedisError:
            used = [cnt.used_in_database(c) for c in counters]
        periods = {
            c.period.kind: {
                "limit": c.limit,
                "used": value,
                "remaining": None if c.limit is None else max(0, c.limit - value),
                "resets_at": c.period.end.isoformat(),
            }
            for c, value in zip(counters, used, strict=True)
        }
        budgets.append(
            {
                "persona_id": persona_id,
                "persona": budget.persona.name if budget.persona_id else None,
                "day": periods["day"],
                "month": periods["month"],
            }
        )
    return {"tenant": {"id": str(tenant.pk), "name": tenant.name}, "budgets": budgets}
