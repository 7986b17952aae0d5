"""The admin's Usage page (``/admin/usage/``): tokens and estimated cost per day as a chart and a
table, by tenant, persona, model or user, with CSV export. Staff with the permission to view
token usage only."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from conversations.usage import GROUPS, PERIODS, usage_report
from somaagent.errors import ValidationFailed
from somaagent.models import Tenant


def _int(raw: str | None, default: int) -> int:
    return int(raw) if raw and raw.isdigit() and len(raw) < 4 else default


def usage_page(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("somaagent.view_tokenusage"):
        raise PermissionDenied
    days = _int(request.GET.get("days"), 30)
    group = request.GET.get("group") or "tenant"
    tenant = (
        Tenant.objects.filter(pk=request.GET["tenant"]).first()
        if request.GET.get("tenant", "").strip()
        else None
    )
    try:
        report = usage_report(days=days, group=group, tenant=tenant)
    except ValidationFailed as exc:
        return HttpResponse(exc.message, status=400, content_type="text/plain")
    if request.GET.get("format") == "csv":
        response = HttpResponse(report.csv(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="usage-{group}-{days}d.csv"'
        return response
    context = {
        **admin.site.each_context(request),
        "title": "Usage",
        "report": report,
        "days": days,
        "group": group,
        "groups": GROUPS,
        "periods": PERIODS,
        "tenant": tenant,
        "tenants": Tenant.objects.order_by("name").values_list("pk", "name")[:500],
        "chart": report.chart_data(),
        "totals": {
            "tokens": sum(r["total"] for r in report.rows),
            "replies": sum(r["replies"] for r in report.rows),
            "cost": sum(r["cost"] for r in report.rows),
        },
    }
    return TemplateResponse(request, "admin/usage.html", context)


urlpatterns = [path("", admin.site.admin_view(usage_page), name="admin-usage")]
