"""The admin's front page and index: what staff look at first, grouped the way they think.

The figures are the operational gauges every app already registers for
``/metrics`` (``somaagent.metrics.scrape``: turns queued and running, the outbox
backlog and its age, dead letters, memory write backlog and lag, broker queues), so
the dashboard and Prometheus never disagree. Each figure links to the admin list
behind it where there is one. A source that fails (the broker away) shows as
unavailable instead of breaking the page.

The index groups models by what staff do (``SECTIONS``), not by Python package.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from somaagent.metrics.scrape import SOURCES

log = logging.getLogger(__name__)

# Section of each admin model ("app_label.ModelName"), in the order they are shown.
SECTIONS: dict[str, tuple[str, ...]] = {
    "Conversations": (
        "conversations.Session",
        "conversations.SessionEvent",
        "conversations.Turn",
        "conversations.TurnAnalysis",
        "conversations.Feedback",
        "conversations.ShareLink",
        "conversations.SessionSummary",
        "conversations.SessionAlias",
        "conversations.Attachment",
        "conversations.Schedule",
        "conversations.ScheduleRun",
    ),
    "People & access": (
        "somaagent.Tenant",
        "auth.User",
        "auth.Group",
        "somaagent.Membership",
        "somaagent.OidcIdentity",
        "somaagent.ApiKey",
        "somaagent.PolicyData",
        "somaagent.Budget",
        "somaagent.AuditLog",
    ),
    "Models": (
        "somaagent.ModelProfile",
        "somaagent.LlmCredential",
        "somaagent.Persona",
        "somaagent.UISetting",
    ),
    "Tools": ("tools.ToolSetting", "tools.McpServer", "tools.ToolRun", "conversations.ToolApproval"),
    "Memory": ("memory.MemoryItem", "memory.MemoryWrite", "memory.MemoryWal", "memory.MemoryReplica"),
    "Documents": ("documents.Collection", "documents.Document"),
    "Operations": (
        "somaagent.TokenUsage",
        "somaagent.OutboxMessage",
        "somaagent.DeadLetter",
        "conversations.WebhookEndpoint",
        "conversations.WebhookDelivery",
        "flags.FeatureFlag",
        "django_celery_beat.PeriodicTask",
        "django_celery_beat.IntervalSchedule",
        "django_celery_beat.CrontabSchedule",
        "django_celery_beat.ClockedSchedule",
        "django_celery_beat.SolarSchedule",
    ),
}
OTHER = "Other"

# The admin list behind a gauge: metric name -> (app_label, model_name, query built from labels).
LINKS: dict[str, tuple[str, str, str]] = {
    "soma_turns_active": ("conversations", "turn", "status={status}"),
    "soma_turns_ended_today": ("conversations", "turn", "status={status}&finished_at__gte={today}"),
    "soma_outbox_backlog": ("somaagent", "outboxmessage", "published_at__isnull=True&topic={topic}"),
    "soma_outbox_oldest_unpublished_age_seconds": ("somaagent", "outboxmessage", "published_at__isnull=True"),
    "soma_dlq_size": ("somaagent", "deadletter", "replayed_at__isnull=True&topic={topic}"),
    "soma_memory_write_backlog": ("memory", "memorywrite", "state=pending"),
    "soma_memory_write_oldest_age_seconds": ("memory", "memorywrite", "state=pending"),
}


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    url: str = ""


def grouped_app_list(app_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Django's app list regrouped into ``SECTIONS`` (unknown models land in "Other")."""
    where = {name: section for section, names in SECTIONS.items() for name in names}
    order = {name: i for names in SECTIONS.values() for i, name in enumerate(names)}
    sections: dict[str, list[dict[str, Any]]] = {section: [] for section in [*SECTIONS, OTHER]}
    for app in app_list:
        for model in app["models"]:
            name = f"{app['app_label']}.{model['object_name']}"
            sections[where.get(name, OTHER)].append({**model, "_order": order.get(name, 999)})
    grouped = []
    for section, models in sections.items():
        if not models:
            continue
        models.sort(key=lambda m: (m["_order"], str(m["name"])))
        grouped.append(
            {
                "name": section,
                "app_label": section.lower().replace(" & ", "_").replace(" ", "_"),
                "app_url": "",
                "has_module_perms": True,
                "models": [{k: v for k, v in m.items() if k != "_order"} for m in models],
            }
        )
    return grouped


def _link(metric: str, labels: dict[str, str]) -> str:
    target = LINKS.get(metric)
    if target is None:
        return ""
    app_label, model, query = target
    try:
        url = reverse(f"admin:{app_label}_{model}_changelist")
    except NoReverseMatch:
        return ""
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)  # UTC, as the gauges
    try:
        query = query.format(**labels, today=midnight.strftime("%Y-%m-%dT%H:%M:%SZ"))
    except KeyError:
        query = ""
    return f"{url}?{query}" if query else url


def _value(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def dashboard_figures() -> list[Figure]:
    """Every registered gauge, one figure per sample, in registration order."""
    figures: list[Figure] = []
    for name, source in list(SOURCES.items()):
        try:
            families = list(source())
        except Exception as exc:  # a source that cannot answer must not take the page down
            log.warning("dashboard source failed", extra={"source": name, "error": repr(exc)[:300]})
            figures.append(Figure(label=f"{name}: unavailable now", value="—"))
            continue
        for family in families:
            for sample in family.samples:
                labels = dict(sample.labels)
                text = str(family.documentation).rstrip(".")
                if labels:
                    text += f" ({', '.join(str(v) for v in labels.values())})"
                figures.append(Figure(label=text, value=_value(sample.value), url=_link(family.name, labels)))
    return figures
