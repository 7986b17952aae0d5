"""Who a schedule's runs are sent as: the user or API key that made it, as they are now."""

from __future__ import annotations

from django.db.models import QuerySet

from conversations.schedules.models import Schedule
from somaagent.errors import Forbidden
from somaagent.identity.principal import Principal, principal_for_key, principal_for_membership
from somaagent.models import ApiKey, Membership


def owner_fields(principal: Principal) -> dict[str, object]:
    if principal.api_key is not None:
        return {"owner_key": principal.api_key, "owner_user": None}
    return {"owner_user": principal.user, "owner_key": None}


def owner_principal(schedule: Schedule) -> Principal:
    """The owner's access today: a revoked key, a user who left the tenant or was deactivated
    cannot run anything any more (the run is refused, and counts as a failure)."""
    if schedule.owner_key_id is not None:
        key = (
            ApiKey.objects.filter(pk=schedule.owner_key_id, revoked_at__isnull=True)
            .select_related("tenant")
            .first()
        )
        if key is not None and key.tenant_id == schedule.tenant_id:
            return principal_for_key(key)
        raise Forbidden("The API key that made this schedule was revoked.", code="owner_gone")
    if schedule.owner_user_id is not None:
        membership = (
            Membership.objects.filter(
                user_id=schedule.owner_user_id, tenant_id=schedule.tenant_id, user__is_active=True
            )
            .select_related("tenant", "user")
            .first()
        )
        if membership is not None:
            return principal_for_membership(membership, via="schedule")
    raise Forbidden("The user who made this schedule no longer has access to the tenant.", code="owner_gone")


def visible_to(principal: Principal) -> QuerySet[Schedule]:
    """As with sessions: a member sees the schedules they made; admins, staff and API keys
    (integrations) see the tenant's."""
    schedules = Schedule.objects.for_tenant(principal.tenant)
    owner = principal.session_owner
    return schedules if owner is None else schedules.filter(owner_user=owner)
