"""Governance: token budgets and usage, per-tenant policy data, and the audit log."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from somaagent.models.tenancy import Persona, Tenant, TenantScopedQuerySet


class Budget(models.Model):
    """Token limits for a tenant (``persona`` empty) or one of its personas; empty = no limit."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="budgets")
    persona = models.ForeignKey(
        Persona, null=True, blank=True, on_delete=models.CASCADE, related_name="budgets"
    )
    daily_tokens = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Tokens per UTC day; empty means no daily limit."
    )
    monthly_tokens = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Tokens per UTC calendar month; empty means no monthly limit."
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "budgets"
        ordering = ["tenant__name", "persona__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant"], condition=Q(persona__isnull=True), name="budget_one_per_tenant"
            ),
            models.UniqueConstraint(
                fields=["tenant", "persona"],
                condition=Q(persona__isnull=False),
                name="budget_one_per_persona",
            ),
        ]

    def __str__(self) -> str:
        scope = self.persona.name if self.persona_id else "whole tenant"  # type: ignore[union-attr]
        return f"{self.tenant} / {scope}"


class TokenUsage(models.Model):
    """Tokens one reply (turn) used; the source of truth the Redis counters are rebuilt from."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="token_usage")
    # Plain ids, not foreign keys: usage outlives deleted sessions and personas (billing).
    persona_id = models.UUIDField(null=True, blank=True, db_index=True)
    session_id = models.UUIDField(db_index=True)
    turn_id = models.UUIDField(unique=True)
    model = models.CharField(max_length=200, blank=True, default="")
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    total_tokens = models.PositiveIntegerField(default=0)
    estimated = models.BooleanField(
        default=False, help_text="True when the model reported no usage (cancelled or failed replies)."
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "token_usage"
        ordering = ["-created_at"]
        verbose_name = "token usage"
        verbose_name_plural = "token usage"
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="usage_tenant_time"),
            models.Index(fields=["tenant", "persona_id", "created_at"], name="usage_persona_time"),
        ]

    def __str__(self) -> str:
        return f"{self.total_tokens} tokens ({self.tenant_id}, turn {self.turn_id})"


class PolicyData(models.Model):
    """Per-tenant JSON fed to the Rego policy as ``data.tenants[<tenant id>]``."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="policy_data")
    document = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField(default=1, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=150, blank=True, default="", editable=False)

    class Meta:
        db_table = "policy_data"
        ordering = ["tenant__name"]
        verbose_name = "tenant policy data"
        verbose_name_plural = "tenant policy data"

    def __str__(self) -> str:
        return f"policy data of {self.tenant} (v{self.version})"


class AuditLog(models.Model):
    """Who did what sensitive thing, when, from where. Rows are only ever added."""

    class Action(models.TextChoices):
        KEY_CREATED = "api_key.created"
        KEY_REVOKED = "api_key.revoked"
        BUDGET_CHANGED = "budget.changed"
        POLICY_DATA_CHANGED = "policy_data.changed"
        SETTINGS_CHANGED = "settings.changed"
        DEAD_LETTER_REPLAYED = "dead_letter.replayed"
        CREDENTIAL_UPDATED = "credential.updated"
        CREDENTIALS_ROTATED = "credential.rotated"
        # Single sign-on (somaagent/identity/oidc): sign-ins, refusals and what the provider's claims changed.
        OIDC_SIGN_IN = "oidc.sign_in", "Single sign-on: signed in"
        OIDC_SIGN_IN_REFUSED = "oidc.sign_in_refused", "Single sign-on: refused"
        OIDC_USER_CREATED = "oidc.user_created", "Single sign-on: user created"
        OIDC_ROLE_CHANGED = "oidc.role_changed", "Single sign-on: role changed by claims"
        TOOL_APPROVAL_DECIDED = "tool.approval_decided", "Tool call approved, denied or expired"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.CharField(max_length=150, help_text="user:<name>, key:<prefix> or cli:<os user>")
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ip = models.GenericIPAddressField(null=True, blank=True)
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_log"
    )
    tenant_name = models.CharField(max_length=100, blank=True, default="")
    action = models.CharField(max_length=40, choices=Action.choices, db_index=True)
    target = models.CharField(max_length=200, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "audit_log"
        ordering = ["-created_at"]
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target}"
