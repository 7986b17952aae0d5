"""Tool settings per tenant and persona, and the record of every tool call (``tool_runs``)."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from somaagent.models import Persona, Tenant, TenantScopedQuerySet


class ToolSetting(models.Model):
    """Enables and configures one tool for a tenant, or for one persona of it (which wins)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="tool_settings")
    persona = models.ForeignKey(
        Persona,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="tool_settings",
        help_text="Empty: the tenant's default for every persona.",
    )
    tool = models.CharField(max_length=64)
    enabled = models.BooleanField(default=True)
    timeout_seconds = models.FloatField(
        null=True, blank=True, help_text="Empty: the tool's default (SOMA_TOOL_TIMEOUT_SECONDS)."
    )
    config = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "tool_settings"
        ordering = ["tenant__name", "tool", "persona__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "tool"],
                condition=Q(persona__isnull=True),
                name="tool_setting_unique_tenant",
            ),
            models.UniqueConstraint(
                fields=["tenant", "persona", "tool"],
                condition=Q(persona__isnull=False),
                name="tool_setting_unique_persona",
            ),
            models.CheckConstraint(
                condition=Q(timeout_seconds__isnull=True) | Q(timeout_seconds__gt=0),
                name="tool_setting_timeout_positive",
            ),
        ]

    def __str__(self) -> str:
        scope = f"{self.tenant}/{self.persona.name}" if self.persona is not None else str(self.tenant)
        return f"{self.tool} for {scope} ({'on' if self.enabled else 'off'})"


class ToolRun(models.Model):
    """One tool call requested by the model in a turn: what was asked, what came back."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        SUCCESS = "success"
        ERROR = "error"
        TIMEOUT = "timeout"
        BLOCKED = "blocked"

    FINAL_STATUSES = (Status.SUCCESS, Status.ERROR, Status.TIMEOUT, Status.BLOCKED)
    OPEN_STATUSES = (Status.PENDING, Status.RUNNING)

    request_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="tool_runs")
    session = models.ForeignKey("conversations.Session", on_delete=models.CASCADE, related_name="tool_runs")
    turn = models.ForeignKey("conversations.Turn", on_delete=models.CASCADE, related_name="tool_runs")
    attempt = models.PositiveIntegerField(default=1, help_text="The turn attempt that asked for it.")
    round = models.PositiveIntegerField(default=1, help_text="The model call (1, 2, …) that asked for it.")
    position = models.PositiveIntegerField(default=0)
    call_id = models.CharField(max_length=200, help_text="The model's tool call id.")
    tool = models.CharField(max_length=64, db_index=True)
    args = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    result = models.JSONField(default=dict, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    timeout_seconds = models.FloatField(default=30.0)
    deadline_at = models.DateTimeField(help_text="After this the turn stops waiting (status timeout).")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, default="", help_text="The worker that ran it.")
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "tool_runs"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["turn", "attempt", "round", "position"], name="tool_run_turn_order"),
            models.Index(
                fields=["status", "deadline_at"],
                name="tool_run_open",
                condition=Q(status__in=["pending", "running"]),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "running", "success", "error", "timeout", "blocked"]),
                name="tool_run_status_valid",
            )
        ]

    def __str__(self) -> str:
        return f"{self.tool} {self.request_id} ({self.status})"
