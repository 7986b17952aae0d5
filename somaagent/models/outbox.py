"""The transactional outbox and the dead-letter queue."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class OutboxMessage(models.Model):
    """A message to publish to the broker, written in the same transaction as its cause."""

    topic = models.CharField(max_length=100)
    payload = models.JSONField()
    dedupe_key = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    published_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        db_table = "outbox"
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="outbox_unpublished_due",
                condition=Q(published_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.topic} #{self.pk}"


class DeadLetter(models.Model):
    """A message that exhausted its retries; staff inspect and replay it from admin."""

    topic = models.CharField(max_length=100, db_index=True)
    event = models.JSONField()
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "dlq"
        ordering = ["-id"]
        verbose_name = "dead letter"
        permissions = [("replay_deadletter", "Can replay dead letters")]

    def __str__(self) -> str:
        return f"{self.topic} #{self.pk}"
