"""Admin for budgets, token usage, tenant policy data and the audit log."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse

from somaagent.admin_base import ImmutableAdmin
from somaagent.audit import actor_from_request
from somaagent.budgets.counters import used_in_database
from somaagent.budgets.services import budget_delete, budget_row_counters, budget_set
from somaagent.errors import SomaError
from somaagent.json_input import JsonFormField
from somaagent.models import AuditLog, Budget, PolicyData, TokenUsage
from somaagent.policy.data import EXAMPLE, policy_data_set, policy_document_validate

DAILY_ROWS = 62


class BudgetForm(forms.ModelForm):
    class Meta:
        model = Budget
        fields = ["tenant", "persona", "daily_tokens", "monthly_tokens"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        persona, tenant = data.get("persona"), data.get("tenant")
        if persona is not None and tenant is not None and persona.tenant_id != tenant.pk:
            self.add_error("persona", "This persona belongs to another tenant.")
        return data


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    form = BudgetForm
    list_display = ["tenant", "persona", "daily_tokens", "used_today", "monthly_tokens", "used_this_month"]
    list_filter = ["tenant"]
    search_fields = ["tenant__name", "persona__name"]
    list_select_related = ["tenant", "persona"]

    def _used(self, obj: Budget, kind: str) -> int:
        counter = next(c for c in budget_row_counters(obj) if c.period.kind == kind)
        return used_in_database(counter)

    @admin.display(description="used today (settled)")
    def used_today(self, obj: Budget) -> int:
        return self._used(obj, "day")

    @admin.display(description="used this month (settled)")
    def used_this_month(self, obj: Budget) -> int:
        return self._used(obj, "month")

    def save_model(self, request: HttpRequest, obj: Budget, form: Any, change: bool) -> None:
        saved = budget_set(
            tenant=obj.tenant,
            persona=obj.persona,
            daily_tokens=obj.daily_tokens,
            monthly_tokens=obj.monthly_tokens,
            actor=actor_from_request(request),
        )
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: Budget) -> None:
        budget_delete(budget=obj, actor=actor_from_request(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Budget]) -> None:
        actor = actor_from_request(request)
        for budget in queryset:
            budget_delete(budget=budget, actor=actor)


@admin.register(TokenUsage)
class TokenUsageAdmin(ImmutableAdmin):
    """Usage per reply, with totals per tenant and day for whatever the filters select."""

    change_list_template = "admin/somaagent/tokenusage/change_list.html"
    list_display = [
        "created_at",
        "tenant",
        "persona_id",
        "session_id",
        "model",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "estimated",
    ]
    list_filter = ["tenant", "model", "estimated"]
    search_fields = ["session_id", "turn_id", "persona_id"]
    date_hierarchy = "created_at"
    list_select_related = ["tenant"]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context and "cl" in context:
            queryset = context["cl"].queryset
            context["daily_totals"] = list(
                queryset.order_by()
                .annotate(day=TruncDate("created_at"))
                .values("day", "tenant__name")
                .annotate(
                    replies=Count("id"),
                    prompt=Sum("prompt_tokens"),
                    completion=Sum("completion_tokens"),
                    total=Sum("total_tokens"),
                )
                .order_by("-day", "tenant__name")[:DAILY_ROWS]
            )
        return response


class PolicyDataForm(forms.ModelForm):
    document = JsonFormField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 16, "cols": 90}),
        help_text="Read by the Rego policy as data.tenants[<tenant id>]. Example: " + json.dumps(EXAMPLE),
    )

    class Meta:
        model = PolicyData
        fields = ["tenant", "document"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        tenant = data.get("tenant") or (self.instance.tenant if self.instance.pk else None)
        if tenant is not None and "document" in data:
            try:
                data["document"] = policy_document_validate(tenant=tenant, document=data["document"] or {})
            except SomaError as exc:
                problems = "; ".join(f"{k}: {v}" for k, v in exc.details.items()) or exc.message
                self.add_error("document", f"{exc.message} {problems}")
        return data


@admin.register(PolicyData)
class PolicyDataAdmin(admin.ModelAdmin):
    form = PolicyDataForm
    list_display = ["tenant", "version", "updated_at", "updated_by"]
    search_fields = ["tenant__name"]
    readonly_fields = ["version", "updated_at", "updated_by"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["tenant", *self.readonly_fields] if obj is not None else list(self.readonly_fields)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # set the document to {} instead: the version keeps counting

    def save_model(self, request: HttpRequest, obj: PolicyData, form: Any, change: bool) -> None:
        saved = policy_data_set(
            tenant=obj.tenant,
            document=form.cleaned_data.get("document") or {},
            actor=actor_from_request(request),
        )
        obj.pk, obj.version = saved.pk, saved.version


@admin.register(AuditLog)
class AuditLogAdmin(ImmutableAdmin):
    list_display = ["created_at", "actor", "action", "tenant_name", "target", "ip"]
    list_filter = ["action", "tenant"]
    search_fields = ["actor", "target", "tenant_name"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "created_at",
        "actor",
        "actor_user",
        "ip",
        "tenant",
        "tenant_name",
        "action",
        "target",
        "details",
    ]
