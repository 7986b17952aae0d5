"""Usage at a glance: tokens and estimated cost per day, by tenant, persona, model or user.

Read from ``token_usage`` (one row per reply, kept after a chat is deleted). The user of a
reply is whoever started its chat (``sessions.created_by``); replies of deleted chats, or of
chats an API key started, count under "(API key or deleted chat)". Cost is an estimate from
``SOMA_MODEL_PRICES``: a JSON object of model name → ``{"prompt": USD, "completion": USD}``
per million tokens, e.g. ``{"gpt-4o": {"prompt": 2.5, "completion": 10}}``. A model without
a price costs nothing in the report and is listed as unpriced.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.db.models import CharField, Count, F, OuterRef, Subquery, Sum
from django.db.models.functions import Cast, TruncDate
from django.utils import timezone

from conversations.models import Session
from somaagent.errors import ValidationFailed
from somaagent.models import Persona, Tenant, TokenUsage

log = logging.getLogger(__name__)

GROUPS = ("tenant", "persona", "model", "user")
PERIODS = (7, 30, 90)
NOBODY = "(API key or deleted chat)"
TOP_SERIES = 8  # the chart draws the largest few; the table and CSV have every row


def prices() -> dict[str, tuple[float, float]]:
    raw = os.environ.get("SOMA_MODEL_PRICES", "").strip()
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
        return {
            str(model): (float(p.get("prompt", 0)), float(p.get("completion", 0))) for model, p in doc.items()
        }
    except (ValueError, AttributeError, TypeError):
        log.warning("SOMA_MODEL_PRICES is not a JSON object of model -> {prompt, completion}; costs are 0")
        return {}


@dataclass
class Report:
    days: list[date]
    group: str
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per day and key
    series: list[dict[str, Any]] = field(default_factory=list)  # per key: tokens per day
    unpriced: list[str] = field(default_factory=list)

    def chart_data(self) -> dict[str, Any]:
        return {"days": [d.isoformat() for d in self.days], "series": self.series[:TOP_SERIES]}

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            ["day", self.group, "replies", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd"]
        )
        for r in self.rows:
            writer.writerow(
                [
                    r["day"],
                    r["label"],
                    r["replies"],
                    r["prompt"],
                    r["completion"],
                    r["total"],
                    f"{r['cost']:.4f}",
                ]
            )
        return out.getvalue()


def _key_expression(group: str) -> Any:
    if group == "tenant":
        return Cast("tenant_id", CharField())
    if group == "persona":
        return Cast("persona_id", CharField())
    if group == "model":
        return F("model")
    starter = Session.objects.filter(pk=OuterRef("session_id")).values("created_by__username")[:1]
    return Subquery(starter, output_field=CharField())


def _normal(group: str, key: Any) -> str:
    """Ids as canonical UUID text (SQLite casts them to 32 hex digits, PostgreSQL with dashes)."""
    if not key:
        return ""
    if group in ("tenant", "persona"):
        try:
            return str(uuid.UUID(str(key)))
        except ValueError:
            return str(key)
    return str(key)


def _labels(group: str, keys: set[str]) -> dict[str, str]:
    ids = [k for k in keys if k]
    if group == "tenant":
        return {str(pk): name for pk, name in Tenant.objects.filter(pk__in=ids).values_list("pk", "name")}
    if group == "persona":
        named = {str(pk): name for pk, name in Persona.objects.filter(pk__in=ids).values_list("pk", "name")}
        return {**named, "": "(no persona)"}
    return {}


def usage_report(
    *, days: int = 30, group: str = "tenant", tenant: Tenant | None = None, user: Any = None
) -> Report:
    """Per day of the last ``days`` (UTC), per ``group``; only ``tenant``'s and ``user``'s
    chats when given (a user sees their own)."""
    if group not in GROUPS:
        raise ValidationFailed(f"group must be one of {', '.join(GROUPS)}.")
    if days not in PERIODS:
        raise ValidationFailed(f"days must be one of {', '.join(map(str, PERIODS))}.")
    today = timezone.now().date()
    first = today - timedelta(days=days - 1)
    usage = TokenUsage.objects.filter(created_at__date__gte=first)
    if tenant is not None:
        usage = usage.filter(tenant=tenant)
    if user is not None:
        usage = usage.filter(session_id__in=Session.objects.filter(created_by=user).values("pk"))
    grouped = (
        usage.annotate(day=TruncDate("created_at"), key=_key_expression(group))
        .values("day", "key", "model")
        .annotate(
            replies=Count("id"),
            prompt=Sum("prompt_tokens"),
            completion=Sum("completion_tokens"),
            total=Sum("total_tokens"),
        )
        .order_by("day", "key")
    )
    price = prices()
    unpriced: set[str] = set()
    merged: dict[tuple[date, str], dict[str, Any]] = {}
    for r in grouped:
        key = _normal(group, r["key"])
        rate = price.get(r["model"])
        if rate is None and r["model"]:
            unpriced.add(r["model"])
        cost = ((r["prompt"] or 0) * rate[0] + (r["completion"] or 0) * rate[1]) / 1e6 if rate else 0.0
        row = merged.setdefault(
            (r["day"], key),
            {
                "day": r["day"].isoformat(),
                "key": key,
                "replies": 0,
                "prompt": 0,
                "completion": 0,
                "total": 0,
                "cost": 0.0,
            },
        )
        for name in ("replies", "prompt", "completion", "total"):
            row[name] += r[name] or 0
        row["cost"] += cost
    labels = _labels(group, {k for _, k in merged})
    day_list = [first + timedelta(days=i) for i in range(days)]
    index = {d: i for i, d in enumerate(day_list)}
    series: dict[str, dict[str, Any]] = {}
    for (day, key), row in merged.items():
        row["label"] = labels.get(key) or key or (NOBODY if group == "user" else "(none)")
        entry = series.setdefault(
            key, {"key": key, "label": row["label"], "tokens": [0] * days, "cost": [0.0] * days, "total": 0}
        )
        entry["tokens"][index[day]] += row["total"]
        entry["cost"][index[day]] += round(row["cost"], 6)
        entry["total"] += row["total"]
    ordered = sorted(series.values(), key=lambda s: -s["total"])
    return Report(
        days=day_list,
        group=group,
        rows=sorted(merged.values(), key=lambda r: (r["day"], -r["total"])),
        series=ordered,
        unpriced=sorted(unpriced),
    )
