"""Tenants, personas, memberships and API keys (only hashes are stored)."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models, transaction


class TenantScopedQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Tenant | uuid.UUID | str) -> TenantScopedQuerySet:
        return self.filter(tenant=tenant)


class Tenant(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "tenants"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Persona(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="personas")
    name = models.CharField(max_length=100)
    system_prompt = models.TextField(blank=True, default="")
    shared_memory = models.BooleanField(
        default=False,
        help_text=(
            "Memories of this persona's conversations are shared by every member of the tenant. "
            "Off: each member (and API keys, together) recalls only their own."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "personas"
        ordering = ["tenant__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="persona_unique_name_per_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.tenant}/{self.name}"


class Membership(models.Model):
    """A Django user's role inside a tenant (the web chat and tenant admins)."""

    class Role(models.TextChoices):
        ADMIN = "admin", "Tenant admin"
        MEMBER = "member", "Member"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="soma_memberships"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "tenant_memberships"
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_unique_user_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        with transaction.atomic():
            if self._state.adding:
                FirstMembership.objects.get_or_create(user_id=self.user_id)
            super().save(*args, **kwargs)


class FirstMembership(models.Model):
    """When a user first became a member of any tenant.

    A user who never was one is enrolled in the ``default`` tenant on first login; a
    user an administrator later removed from every tenant stays removed (refused),
    instead of being silently enrolled again.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="soma_first_membership"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "tenant_first_memberships"

    def __str__(self) -> str:
        return f"{self.user} first a member at {self.created_at}"


class ApiKey(models.Model):
    """An API key: the public ``prefix`` identifies it, only a hash of the secret is kept."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True, default="")
    prefix = models.CharField(max_length=32, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Requests per minute; empty uses SOMA_RATE_LIMIT_PER_MINUTE, 0 means no limit.",
    )

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "api_keys"
        verbose_name = "API key"
        verbose_name_plural = "API keys"
        ordering = ["-created_at"]
        permissions = [("revoke_apikey", "Can revoke API keys")]

    def __str__(self) -> str:
        return f"{self.prefix} ({self.name or 'unnamed'})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
