"""The provider's group claim → tenant memberships, tenant roles and staff, applied at every sign-in.

``SOMA_OIDC_GROUP_MAP`` (see docs/security.md, "Single sign-on") names, per provider group, the access it
gives. With a mapping configured the provider decides: at each sign-in the
user's memberships become exactly what their groups map to (the highest role
when several groups name one tenant), and ``is_staff`` follows the ``staff``
grant. A membership their groups no longer grant is deleted, which also ends
their open streams (``somaagent.identity.principal.principal_lapsed``). Every change is
an ``oidc.role_changed`` audit entry; a user with no tenant (staff only) is not
enrolled in the default tenant either. Without a mapping nothing is touched:
administrators manage memberships by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from somaagent.audit import Actor, audit_record
from somaagent.identity.oidc.conf import ROLES, OidcSettings
from somaagent.models import AuditLog, FirstMembership, Membership, Tenant

MAX_GROUPS = 1000


@dataclass(frozen=True)
class Access:
    staff: bool
    roles: dict[str, str]  # tenant name → role
    groups: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.staff and not self.roles


def claim_values(claims: dict[str, Any], path: str) -> tuple[str, ...]:
    """The strings at ``path`` (dots walk into objects: ``realm_access.roles``); missing → none."""
    node: Any = claims
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, str):
        return (node,)
    if isinstance(node, list):
        return tuple(v for v in node[:MAX_GROUPS] if isinstance(v, str))
    return ()


def access_from_claims(claims: dict[str, Any], config: OidcSettings) -> Access:
    groups = claim_values(claims, config.groups_claim)
    staff = False
    roles: dict[str, str] = {}
    for group in groups:
        for grant in config.group_map.get(group, ()):
            if grant.staff:
                staff = True
            elif grant.tenant not in roles or ROLES.index(grant.role) > ROLES.index(roles[grant.tenant]):
                roles[grant.tenant] = grant.role
    return Access(staff=staff, roles=roles, groups=groups)


def _role_changed(actor: Actor, user: Any, tenant: Tenant | None, change: dict[str, Any]) -> None:
    audit_record(
        actor=actor,
        action=AuditLog.Action.OIDC_ROLE_CHANGED,
        tenant=tenant,
        target=f"user:{user.get_username()}",
        details=change,
    )


def access_apply(*, user: Any, access: Access, actor: Actor) -> int:
    """Make the user's memberships and staff flag what ``access`` says; the number of changes.

    Call inside the sign-in's transaction (the user row is locked by the caller)."""
    changes = 0
    # The provider decides: never enrolled in the default tenant on a first chat (identity/principal.py).
    FirstMembership.objects.get_or_create(user=user)
    wanted = {name: Tenant.objects.get_or_create(name=name)[0] for name in access.roles}
    current = {m.tenant.name: m for m in Membership.objects.select_related("tenant").filter(user=user)}
    for name, membership in current.items():
        if name not in wanted:
            membership.delete()
            change = {"tenant_role": {"from": membership.role, "to": None}}
            _role_changed(actor, user, membership.tenant, change)
            changes += 1
    for name, tenant in wanted.items():
        role = access.roles[name]
        existing = current.get(name)
        previous = existing.role if existing is not None else None
        if previous == role:
            continue
        if existing is None:
            Membership.objects.create(user=user, tenant=tenant, role=role)
        else:
            existing.role = role
            existing.save(update_fields=["role"])
        _role_changed(actor, user, tenant, {"tenant_role": {"from": previous, "to": role}})
        changes += 1
    if bool(user.is_staff) != access.staff:
        _role_changed(actor, user, None, {"staff": {"from": bool(user.is_staff), "to": access.staff}})
        user.is_staff = access.staff
        user.save(update_fields=["is_staff"])
        changes += 1
    return changes
