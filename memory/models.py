"""Memory tables: the write outbox, the WAL, the replica, and the embedded store.

Session and persona ids are plain UUIDs, not foreign keys: a write outlives
its session (a deleted session still has to be forgotten by the service).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from somaagent.models import Tenant, TenantScopedQuerySet

ROLES = ("user", "assistant", "system", "tool")


class MemoryWrite(models.Model):
    """One write for the memory service, stored in the same transaction as its cause.

    Writes of one session are delivered one after another in ``id`` order: only
    the oldest pending write of a session (its *head*) is ever leased.
    """

    class Op(models.TextChoices):
        REMEMBER = "remember"
        FORGET = "forget"

    class State(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        DEAD = "dead"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    session_id = models.UUIDField()
    persona_id = models.UUIDField(null=True, blank=True)
    event_id = models.UUIDField(help_text="The session event this write describes (random for forget).")
    op = models.CharField(max_length=10, choices=Op.choices, default=Op.REMEMBER)
    payload = models.JSONField(help_text="The wire body without tenant: namespace, key, value, tags.")
    idempotency_key = models.CharField(max_length=200, unique=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    retry_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    retry_deadline = models.DateTimeField(help_text="After a failure past this moment the write is dead.")
    last_error = models.TextField(blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "memory_write_outbox"
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["session_id", "id"], name="memwrite_pending_stream", condition=Q(state="pending")
            ),
            models.Index(
                fields=["next_attempt_at"], name="memwrite_pending_due", condition=Q(state="pending")
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["pending", "delivered", "dead"]), name="memwrite_state_valid"
            ),
            models.CheckConstraint(condition=Q(op__in=["remember", "forget"]), name="memwrite_op_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.op} {self.idempotency_key} ({self.state})"


class MemoryWal(models.Model):
    """The write-ahead log of delivered writes; the replicator copies it into ``memory_replica``.

    A table rather than a Redis stream: it survives losing Redis, and the
    replica can be rebuilt from it (within the replica retention, after which both are pruned).
    """

    class State(models.TextChoices):
        PENDING = "pending"
        REPLICATED = "replicated"
        FAILED = "failed"

    event_id = models.UUIDField(unique=True)
    write_id = models.BigIntegerField(null=True, blank=True)
    op = models.CharField(max_length=10, default=MemoryWrite.Op.REMEMBER)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    session_id = models.UUIDField()
    persona_id = models.UUIDField(null=True, blank=True)
    role = models.CharField(max_length=20, blank=True, default="")
    payload = models.JSONField(default=dict)
    wal_timestamp = models.DateTimeField(default=timezone.now)
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    replicated_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "memory_wal"
        ordering = ["id"]
        verbose_name = "memory WAL record"
        indexes = [
            models.Index(fields=["wal_timestamp"], name="memwal_unreplicated", condition=Q(state="pending"))
        ]

    def __str__(self) -> str:
        return f"wal {self.event_id} ({self.state})"


class MemoryReplica(models.Model):
    """A local copy of every remembered message, one row per event (SPEC §5)."""

    event_id = models.UUIDField(unique=True)
    session_id = models.UUIDField(db_index=True)
    persona_id = models.UUIDField(null=True, blank=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    role = models.CharField(max_length=20)
    payload = models.JSONField(default=dict)
    wal_timestamp = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "memory_replica"
        ordering = ["-id"]
        constraints = [models.CheckConstraint(condition=Q(role__in=ROLES), name="memreplica_role_valid")]

    def __str__(self) -> str:
        return f"{self.role} {self.event_id}"


class MemoryItem(models.Model):
    """The embedded memory store: one remembered text, ranked by full-text search on recall.

    Search indexes are created per database by the migration: a GIN index on
    ``to_tsvector('english', text)`` on PostgreSQL, an FTS5 table kept in step
    by triggers on SQLite.
    """

    id = models.BigAutoField(primary_key=True)
    key = models.CharField(max_length=200, unique=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    namespace = models.CharField(max_length=200)
    session_id = models.UUIDField(null=True, blank=True)
    text = models.TextField()
    payload = models.JSONField(default=dict)
    tags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "memory_items"
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["tenant", "namespace"], name="memitem_namespace"),
            models.Index(fields=["tenant", "namespace", "session_id"], name="memitem_session"),
        ]

    def __str__(self) -> str:
        return self.key
