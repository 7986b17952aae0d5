"""Who is calling: a tenant plus the API key or Django user behind the request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from somaagent.models import ApiKey, Membership, Tenant

DEFAULT_TENANT_NAME = "default"


@dataclass(frozen=True)
class Principal:
    tenant: Tenant
    api_key: ApiKey | None = None
    user: Any = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    role: str = Membership.Role.MEMBER

    is_authenticated = True
    is_anonymous = False

    @property
    def label(self) -> str:
        if self.api_key is not None:
            return f"key:{self.api_key.prefix}"
        return f"user:{getattr(self.user, 'pk', '?')}"

    def has_scope(self, scope: str) -> bool:
        """Keys without scopes may do everything their tenant may."""
        return not self.scopes or scope in self.scopes or "*" in self.scopes


def principal_for_key(key: ApiKey) -> Principal:
    return Principal(tenant=key.tenant, api_key=key, scopes=frozenset(key.scopes or []))


def principal_for_user(user: Any) -> Principal:
    """A logged-in user chats in their tenant; users without one use the default tenant."""
    membership = Membership.objects.select_related("tenant").filter(user=user).order_by("created_at").first()
    if membership is None:
        with transaction.atomic():
            tenant, _ = Tenant.objects.get_or_create(name=DEFAULT_TENANT_NAME)
            role = Membership.Role.ADMIN if user.is_superuser else Membership.Role.MEMBER
            membership, _ = Membership.objects.get_or_create(
                user=user, tenant=tenant, defaults={"role": role}
            )
            membership.tenant = tenant
    return Principal(tenant=membership.tenant, user=user, role=membership.role)
