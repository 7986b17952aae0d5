"""A tenant's webhook endpoints and the deliveries made to them (the delivery log)."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from somaagent.models import Tenant, TenantScopedQuerySet

EVENTS = (
    "turn.finished",
    "turn.failed",
    "turn.cancelled",
    "schedule.run_finished",
    "approval.requested",
)  # what an endpoint can subscribe to
ALL_EVENTS = "*"


class WebhookEndpoint(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True, default="")
    events = models.JSONField(default=list, help_text='Event types, or ["*"] for every one.')
    enabled = models.BooleanField(default=True)
    # Staff only (admin): lets the endpoint be plain http and resolve to a private address.
    allow_private = models.BooleanField(
        default=False,
        help_text="Allow http:// and private, loopback or link-local addresses (an internal receiver).",
    )
    timeout_seconds = models.FloatField(default=10.0)
    secret_encrypted = models.TextField(editable=False)
    # After a rotation the old secret signs too, until it expires: receivers switch without a gap.
    previous_secret_encrypted = models.TextField(blank=True, default="", editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.CharField(max_length=120, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "webhook_endpoints"
        ordering = ["-created_at"]
        verbose_name = "webhook endpoint"

    def __str__(self) -> str:
        return self.url

    def wants(self, event: str) -> bool:
        return self.enabled and (ALL_EVENTS in self.events or event in self.events)


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        DEAD = "dead"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    tenant_id = models.UUIDField(db_index=True)
    event = models.CharField(max_length=60)
    # What the event is about (a turn's id): one delivery per endpoint, event and subject.
    subject = models.CharField(max_length=100)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True)
    retry_from = models.DateTimeField(default=timezone.now)  # the retry span starts here (again on replay)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_duration_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "webhook_deliveries"
        ordering = ["-created_at"]
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event", "subject"], name="webhook_delivery_once"),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_due",
                condition=models.Q(status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint_id}"
