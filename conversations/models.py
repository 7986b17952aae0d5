"""Sessions, their events (the stream's durable part), turns and attachments."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from somaagent.models import Persona, Tenant, TenantScopedQuerySet


class EventType(models.TextChoices):
    USER_MESSAGE = "user.message"
    ASSISTANT_STARTED = "assistant.started"
    ASSISTANT_DELTA = "assistant.delta"
    TOOL_START = "tool.start"
    TOOL_RESULT = "tool.result"
    TOOL_APPROVAL_REQUESTED = "tool.approval_requested"
    TOOL_APPROVAL_DECIDED = "tool.approval_decided"
    ASSISTANT_FINAL = "assistant.final"
    ASSISTANT_ERROR = "assistant.error"
    ASSISTANT_CANCELLED = "assistant.cancelled"


class Session(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        ARCHIVED = "archived"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="sessions")
    persona = models.ForeignKey(
        Persona, null=True, blank=True, on_delete=models.SET_NULL, related_name="sessions"
    )
    title = models.CharField(max_length=200, blank=True, default="")
    # The title is the shortened first message and the model may still propose one (once);
    # a rename clears it, so a user's title is never overwritten (services/titles.py).
    title_automatic = models.BooleanField(default=False)
    metadata = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    # The web chat user (or JWT user) who started it; members see only their own sessions.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="soma_sessions",
    )
    # The last event cursor handed out; advanced under the row lock (services.events).
    last_seq = models.PositiveBigIntegerField(default=0, editable=False)
    # Branches (services/branches.py), kept by the same locked UPDATE that hands out a cursor:
    # the newest persisted event (the active branch's leaf), that event's parent, and the
    # cursor from which every persisted event lies on the one path ending at the leaf.
    leaf_event_id = models.UUIDField(null=True, blank=True, editable=False)
    leaf_parent_id = models.UUIDField(null=True, blank=True, editable=False)
    chain_seq = models.PositiveBigIntegerField(default=0, editable=False)
    # Some message or reply was written on another branch than the newest (edit, regenerate).
    branched = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "sessions"
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["tenant", "-updated_at"], name="session_tenant_recent")]

    def __str__(self) -> str:
        return self.title or str(self.id)


class SessionEvent(models.Model):
    """A persisted event; ``seq`` is the per-session monotonic stream cursor."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField(max_length=40, choices=EventType.choices)
    role = models.CharField(max_length=10)
    occurred_at = models.DateTimeField(default=timezone.now)
    payload = models.JSONField(default=dict)
    # The event before this one on its branch (an ``event_id`` of the same session), null for
    # the session's first message; a branch is the path of parent links from a leaf.
    parent_id = models.UUIDField(null=True, blank=True, editable=False)

    class Meta:
        db_table = "session_events"
        ordering = ["session", "seq"]
        constraints = [models.UniqueConstraint(fields=["session", "seq"], name="session_event_unique_seq")]
        indexes = [models.Index(fields=["parent_id"], name="session_event_parent")]

    def __str__(self) -> str:
        return f"{self.type} #{self.seq}"


class Turn(models.Model):
    """One reply to one user event: the unit of idempotency and of the worker lease."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="turns")
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="turns")
    # One user message may have several replies (regenerate): one turn each.
    user_event = models.ForeignKey(SessionEvent, on_delete=models.CASCADE, related_name="turns")
    # Turns of a session run one after another in the order of their message's cursor; another
    # reply to an earlier message (regenerate) takes its place with a cursor of its own, here.
    position = models.PositiveBigIntegerField(null=True, blank=True)
    # The turn's newest persisted event (null before its first): where its next one attaches.
    tip_event_id = models.UUIDField(null=True, blank=True, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    lease_owner = models.CharField(max_length=100, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    model = models.CharField(max_length=200, blank=True, default="")
    usage = models.JSONField(default=dict, blank=True)
    error_code = models.CharField(max_length=50, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    # Parked (conversations/turn/approvals.py): a tool call waits for a person; no worker
    # holds the turn (no lease) and the sweep leaves it alone until the last answer dispatches it.
    awaiting_approval = models.BooleanField(default=False)
    # Where a parked turn resumes (the model's messages so far, its text, the round's calls);
    # taken (cleared) by the claim that resumes it.
    resume_state = models.JSONField(null=True, blank=True, editable=False)

    objects = TenantScopedQuerySet.as_manager()

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    class Meta:
        db_table = "turns"
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["status", "lease_expires_at"],
                name="turn_active_lease",
                condition=Q(status__in=["queued", "running"]),
            ),
            models.Index(fields=["session", "created_at"], name="turn_session_order"),
            # The admin dashboard's and /metrics' "turns ended today" (conversations/ops.py).
            models.Index(fields=["finished_at"], name="turn_finished_at"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "completed", "failed", "cancelled"]),
                name="turn_status_valid",
            )
        ]

    def __str__(self) -> str:
        return f"turn {self.id} ({self.status})"


class Attachment(models.Model):
    class Status(models.TextChoices):
        CLEAN = "clean"
        QUARANTINED = "quarantined"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="attachments")
    session = models.ForeignKey(
        Session, null=True, blank=True, on_delete=models.SET_NULL, related_name="attachments"
    )
    filename = models.CharField(max_length=255)
    mime = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.CLEAN)
    quarantine_reason = models.CharField(max_length=200, blank=True, default="")
    content = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "attachments"
        ordering = ["-created_at"]
        permissions = [("quarantine_attachment", "Can quarantine attachments and release them")]

    def __str__(self) -> str:
        return self.filename


class IdempotencyRecord(models.Model):
    """The first answer to an ``Idempotency-Key``; replays return it unchanged."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE)
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    response = models.JSONField()
    status_code = models.PositiveSmallIntegerField(default=202)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        db_table = "idempotency_keys"
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="idempotency_unique_key")]

    def __str__(self) -> str:
        return self.key


class TurnAnalysis(models.Model):
    """What the turn's analysis found and which models it went to (escalation, fallbacks)."""

    turn = models.OneToOneField(Turn, on_delete=models.CASCADE, primary_key=True, related_name="analysis")
    intent = models.CharField(max_length=20, db_index=True)
    sentiment = models.CharField(max_length=10)
    tags = models.JSONField(default=list, blank=True)
    complexity = models.FloatField(default=0.0)
    chars = models.PositiveIntegerField(default=0)
    escalated = models.BooleanField(default=False, db_index=True)
    escalation_reason = models.CharField(max_length=30, blank=True, default="")
    escalation_detail = models.CharField(max_length=300, blank=True, default="")
    profile = models.CharField(max_length=300, blank=True, default="", help_text="The model that answered.")
    attempts = models.JSONField(default=list, blank=True, help_text="Failed calls: retries and fallbacks.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "turn_analyses"
        ordering = ["-created_at"]
        verbose_name_plural = "turn analyses"

    def __str__(self) -> str:
        return f"{self.intent}/{self.sentiment} ({self.turn_id})"


class SessionSummary(models.Model):
    """A running summary of a session's older messages, used in place of them in the prompt."""

    session = models.OneToOneField(
        Session, on_delete=models.CASCADE, primary_key=True, related_name="summary"
    )
    text = models.TextField(blank=True, default="")
    # Every history message with seq <= covered_seq is in ``text``.
    covered_seq = models.PositiveBigIntegerField(default=0)
    # The event at covered_seq: the summary is of the branches that pass through it.
    covered_event_id = models.UUIDField(null=True, blank=True)
    messages = models.PositiveIntegerField(default=0, help_text="How many messages the summary covers.")
    model = models.CharField(max_length=200, blank=True, default="")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "session_summaries"
        verbose_name_plural = "session summaries"

    def __str__(self) -> str:
        return f"summary of {self.session_id} to #{self.covered_seq}"


class SessionAlias(models.Model):
    """An external conversation key (the OpenAI ``user`` field) mapped to a session."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="session_aliases")
    key = models.CharField(max_length=320)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="aliases")
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "session_aliases"
        verbose_name_plural = "session aliases"
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="session_alias_unique_key")]

    def __str__(self) -> str:
        return self.key


class Feedback(models.Model):
    """A reader's thumbs up or down on one reply, with an optional comment and tags.

    One per reply and author (``user:<id>`` or ``key:<prefix>``); giving it again replaces it.
    ``model`` and ``persona`` are copied from the reply so staff can filter by them.
    """

    class Rating(models.TextChoices):
        UP = "up"
        DOWN = "down"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="feedback")
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="feedback")
    event = models.ForeignKey(SessionEvent, on_delete=models.CASCADE, related_name="feedback")
    author = models.CharField(max_length=120)
    rating = models.CharField(max_length=4, choices=Rating.choices)
    comment = models.TextField(blank=True, default="")
    tags = models.JSONField(default=list, blank=True)
    model = models.CharField(max_length=200, blank=True, default="")
    persona = models.ForeignKey(Persona, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "feedback"
        ordering = ["-updated_at"]
        verbose_name_plural = "feedback"
        constraints = [
            models.UniqueConstraint(fields=["event", "author"], name="feedback_one_per_author"),
            models.CheckConstraint(condition=Q(rating__in=["up", "down"]), name="feedback_rating_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.rating} on {self.event_id} by {self.author}"


class ShareLink(models.Model):
    """A read-only link to a snapshot of a chat: its messages up to ``up_to_seq``, for anyone
    holding the token, until revoked."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    token = models.CharField(max_length=64, unique=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="share_links")
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="share_links")
    author = models.CharField(max_length=120)
    up_to_seq = models.PositiveBigIntegerField()
    # The last event of the branch shown (null: links made before branches, which show the
    # chat's messages up to up_to_seq).
    leaf_event_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "share_links"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "author"], name="share_link_author")]

    def __str__(self) -> str:
        return f"share of {self.session_id} to #{self.up_to_seq}"


# Webhooks and schedules keep their models in their own packages; imported here so Django finds them.
from conversations.schedules.models import Schedule, ScheduleRun  # noqa: E402
from conversations.webhooks.models import WebhookDelivery, WebhookEndpoint  # noqa: E402

__all__ = ["Schedule", "ScheduleRun", "WebhookDelivery", "WebhookEndpoint"]


class ToolApproval(models.Model):
    """A tool call that waits for a person's answer before it runs (docs/approvals.md)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        DENIED = "denied"
        EXPIRED = "expired"
        CANCELLED = "cancelled"  # its turn was cancelled while it waited

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="tool_approvals")
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="tool_approvals")
    turn = models.ForeignKey(Turn, on_delete=models.CASCADE, related_name="tool_approvals")
    run = models.OneToOneField("tools.ToolRun", on_delete=models.CASCADE, related_name="approval")
    call_id = models.CharField(max_length=200, help_text="The model's tool call id.")
    tool = models.CharField(max_length=64)
    arguments = models.JSONField(default=dict, blank=True, help_text="What the model asked for.")
    reason = models.CharField(max_length=500, blank=True, default="")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=150, blank=True, default="")
    edited_arguments = models.JSONField(null=True, blank=True, help_text="What the person approved instead.")
    always = models.BooleanField(default=False, help_text="Always allow this tool in this chat.")
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "tool_approvals"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["session", "call_id"], name="tool_approval_call"),
            models.Index(fields=["expires_at"], name="tool_approval_open", condition=Q(status="pending")),
            models.Index(fields=["session", "tool"], name="tool_approval_always", condition=Q(always=True)),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "approved", "denied", "expired", "cancelled"]),
                name="tool_approval_status_valid",
            )
        ]

    def __str__(self) -> str:
        return f"{self.tool} {self.call_id} ({self.status})"
