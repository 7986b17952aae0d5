"""Schedules and their runs (the run history)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.timezone import now

from somaagent.models import ApiKey, Persona, Tenant, TenantScopedQuerySet


class Schedule(models.Model):
    class Kind(models.TextChoices):
        CRON = "cron"
        INTERVAL = "interval"

    class Missed(models.TextChoices):
        RUN_ONCE = "run_once", "run once on recovery"
        SKIP = "skip", "skip"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="schedules")
    name = models.CharField(max_length=120)
    message = models.TextField(
        help_text="Sent at each run; {date}, {time} and {datetime} become the due time."
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    cron = models.CharField(max_length=120, blank=True, default="")
    interval_seconds = models.PositiveIntegerField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    # Runs go to this session, or each to a new session when empty.
    session = models.ForeignKey(
        "conversations.Session", null=True, blank=True, on_delete=models.CASCADE, related_name="schedules"
    )
    persona = models.ForeignKey(Persona, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    enabled = models.BooleanField(default=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    missed = models.CharField(max_length=10, choices=Missed.choices, default=Missed.RUN_ONCE)
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    anchor = models.DateTimeField(default=now)  # intervals count from here
    consecutive_failures = models.PositiveIntegerField(default=0)
    paused_reason = models.CharField(max_length=300, blank=True, default="")
    # Whose message it is: runs are admitted as this user (or key), as if they sent it.
    owner_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    owner_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=now)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "schedules"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class ScheduleRun(models.Model):
    class Status(models.TextChoices):
        WAITING = "waiting"  # due, waiting for a background slot (fairness between tenants)
        QUEUED = "queued"  # its message was accepted: the turn is queued or running
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"
        REFUSED = "refused"  # policy, budget or the owner's access said no: no turn
        SKIPPED = "skipped"  # missed while the system was down, and the schedule skips those

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="runs")
    tenant_id = models.UUIDField(db_index=True)
    due_at = models.DateTimeField()
    manual = models.BooleanField(default=False)  # "run now"
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.WAITING)
    session_id = models.UUIDField(null=True, blank=True)
    turn_id = models.UUIDField(null=True, blank=True, db_index=True)
    error = models.CharField(max_length=500, blank=True, default="")
    tokens = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "schedule_runs"
        ordering = ["-due_at"]
        constraints = [
            # Exactly once per due time (a manual run has its own moment).
            models.UniqueConstraint(fields=["schedule", "due_at"], name="schedule_run_once"),
        ]
        indexes = [
            models.Index(fields=["status", "tenant_id", "due_at"], name="schedule_run_slots"),
        ]

    def __str__(self) -> str:
        return f"{self.schedule_id} @ {self.due_at:%Y-%m-%d %H:%M}"
