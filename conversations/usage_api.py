"""``GET /v1/usage``: your own tokens (the chats you started; an admin's or a key's: the tenant's)
per day for the last 30 days, and what is left of the tenant's budgets."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations.usage import usage_report
from somaagent.budgets.selectors import budget_status
from somaagent.identity.authentication import principal_of


class UsageView(APIView):
    @extend_schema(responses={200: dict}, summary="Your tokens per day (30 days) and the budget left")
    def get(self, request: Request) -> Response:
        principal = principal_of(request)
        report = usage_report(days=30, group="model", tenant=principal.tenant, user=principal.session_owner)
        per_day = [0] * len(report.days)
        for series in report.series:
            per_day = [a + b for a, b in zip(per_day, series["tokens"], strict=True)]
        budgets = budget_status(tenant=principal.tenant)["budgets"]
        tenant_budget = next((b for b in budgets if b["persona_id"] is None), None)
        return Response(
            {
                "scope": "yours" if principal.session_owner is not None else "tenant",
                "days": [d.isoformat() for d in report.days],
                "tokens": per_day,
                "today": per_day[-1] if per_day else 0,
                "last_30_days": sum(per_day),
                "by_model": [{"model": s["label"], "tokens": s["total"]} for s in report.series],
                "budget": {"day": tenant_budget["day"], "month": tenant_budget["month"]}
                if tenant_budget
                else None,
            }
        )
