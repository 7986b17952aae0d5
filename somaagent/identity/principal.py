"""Who is calling: a tenant plus the API key or Django user behind the request, with its scopes.

Roles inside a tenant (``Membership.Role``): ``admin`` manages the tenant
(keys, reading budgets and usage), ``member`` chats. Django staff manage every
tenant from the admin site. A key's role follows its scopes: a key with the
``admin`` scope acts as a tenant admin.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from somaagent.errors import Forbidden, Unauthenticated
from somaagent.identity import scopes as sc
from somaagent.models import ApiKey, FirstMembership, Membership, Tenant

DEFAULT_TENANT_NAME = "default"


@dataclass(frozen=True)
class Principal:
    tenant: Tenant
    api_key: ApiKey | None = None
    user: Any = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    role: str = Membership.Role.MEMBER
    via: str = "session"  # "key", "jwt" or "session" (the web chat's login)
    expires_at: float | None = None  # a JWT's ``exp`` (Unix time): open streams end then

    is_authenticated = True
    is_anonymous = False

    @property
    def label(self) -> str:
        if self.api_key is not None:
            return f"key:{self.api_key.prefix}"
        return f"user:{getattr(self.user, 'username', None) or getattr(self.user, 'pk', '?')}"

    @property
    def rate_limit_id(self) -> str:
        if self.api_key is not None:
            return f"key:{self.api_key.prefix}"
        return f"user:{getattr(self.user, 'pk', '?')}"

    @property
    def session_owner(self) -> Any:
        """The user whose sessions alone this caller may see, or None for the whole tenant.

        A member chatting through the web chat (or a JWT) sees the sessions they
        started; tenant admins, staff and API keys (integrations) see the tenant's.
        """
        if self.user is None or self.role == Membership.Role.ADMIN or getattr(self.user, "is_staff", False):
            return None
        return self.user

    @property
    def is_tenant_admin(self) -> bool:
        return self.has_scope(sc.ADMIN)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


def principal_for_key(key: ApiKey) -> Principal:
    scopes = sc.effective_key_scopes(key.scopes)
    role = Membership.Role.ADMIN if sc.ADMIN in scopes else Membership.Role.MEMBER
    return Principal(tenant=key.tenant, api_key=key, scopes=scopes, role=role, via="key")


def principal_for_membership(
    membership: Membership, *, via: str, token_scopes: Any = None, expires_at: float | None = None
) -> Principal:
    """A user acting in one tenant; a token's scopes can only narrow what the role allows."""
    scopes = sc.ROLE_SCOPES.get(membership.role, sc.DEFAULT_SCOPES)
    if token_scopes is not None:
        scopes = scopes & frozenset(token_scopes)
    return Principal(
        tenant=membership.tenant,
        user=membership.user,
        role=membership.role,
        scopes=scopes,
        via=via,
        expires_at=expires_at,
    )


def principal_for_user(user: Any) -> Principal:
    """A logged-in user chats in their tenant.

    A user who never was a member of any tenant is enrolled in the ``default`` tenant; a
    user an administrator removed from every tenant is refused (403), not enrolled again.
    """
    membership = _first_membership(user)
    if membership is None:
        membership = _enroll_in_default(user)
    membership.user = user
    return principal_for_membership(membership, via="session")


def _first_membership(user: Any) -> Membership | None:
    return Membership.objects.select_related("tenant").filter(user=user).order_by("created_at").first()


def _enroll_in_default(user: Any) -> Membership:
    with transaction.atomic():
        _, first_time = FirstMembership.objects.get_or_create(user=user)
        if not first_time:
            # Removed by an administrator — or a concurrent first request just enrolled them.
            membership = _first_membership(user)
            if membership is None:
                raise Forbidden(
                    "You are not a member of any tenant; ask an administrator to add you.",
                    code="no_membership",
                )
            return membership
        tenant, _ = Tenant.objects.get_or_create(name=DEFAULT_TENANT_NAME)
        role = Membership.Role.ADMIN if user.is_superuser else Membership.Role.MEMBER
        membership, _ = Membership.objects.get_or_create(user=user, tenant=tenant, defaults={"role": role})
        membership.tenant = tenant
        return membership


def principal_lapsed(principal: Principal) -> Unauthenticated | None:
    """Why credentials accepted earlier no longer hold — the JWT expired, the key was revoked,
    the user was deactivated or left the tenant — or None. For open streams, which re-check
    this every heartbeat: no query for an expiry, one small query otherwise."""
    if principal.expires_at is not None and time.time() >= principal.expires_at:
        return Unauthenticated("The access token expired.", code="token_expired")
    if principal.api_key is not None:
        if not ApiKey.objects.filter(pk=principal.api_key.pk, revoked_at__isnull=True).exists():
            return Unauthenticated("The API key was revoked.", code="key_revoked")
        return None
    if principal.user is None:
        return None
    active = (
        Membership.objects.filter(user_id=principal.user.pk, tenant_id=principal.tenant.pk)
        .values_list("user__is_active", flat=True)
        .first()
    )
    if active is None:
        return Unauthenticated("You are no longer a member of this tenant.", code="membership_removed")
    if not active:
        return Unauthenticated("The account was deactivated.", code="account_deactivated")
    return None
