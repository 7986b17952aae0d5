"""JWTs for API clients (djangorestframework-simplejwt): obtained with a username and password.

A token pair is bound to one tenant the user is a member of. Claims: ``user_id``,
``tenant`` (tenant id), ``role`` and ``scopes``. Every request re-reads the
membership, so removing a user from a tenant, deactivating them or lowering
their role takes effect at once; the token's scopes can only narrow the role's.
Refreshing re-checks the same and issues a new access token.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from django.http import HttpRequest
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from somaagent.errors import Unauthenticated, ValidationFailed
from somaagent.identity import scopes as sc
from somaagent.identity.principal import Principal, principal_for_membership
from somaagent.models import Membership

INVALID = "Invalid or expired token."


def _membership(*, user: Any, tenant_hint: str | None) -> Membership:
    memberships = Membership.objects.select_related("tenant", "user").filter(user=user)
    if tenant_hint:
        chosen = [m for m in memberships if tenant_hint in (m.tenant.name, str(m.tenant.pk))]
        if not chosen:
            raise Unauthenticated("You are not a member of that tenant.")
        return chosen[0]
    found = list(memberships[:2])
    if not found:
        raise Unauthenticated("This user is not a member of any tenant.")
    if len(found) > 1:
        raise ValidationFailed(
            "This user is a member of several tenants: name one in 'tenant'.",
            details={"tenant": "required"},
        )
    return found[0]


def _token_body(refresh: RefreshToken, access: AccessToken, membership: Membership) -> dict[str, Any]:
    return {
        "access": str(access),
        "refresh": str(refresh),
        "token_type": "Bearer",
        "expires_in": int(api_settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
        "tenant": {"id": str(membership.tenant.pk), "name": membership.tenant.name},
        "role": membership.role,
        "scopes": sorted(access["scopes"]),
    }


def token_obtain(
    *,
    request: HttpRequest | None,
    username: str,
    password: str,
    tenant: str | None = None,
    scopes: list[str] | None = None,
) -> dict[str, Any]:
    """Check the password and issue an access + refresh pair for one of the user's tenants."""
    user = authenticate(request, username=username, password=password)
    if user is None or not user.is_active:
        raise Unauthenticated("Wrong username or password.")
    membership = _membership(user=user, tenant_hint=tenant)
    allowed = sc.ROLE_SCOPES.get(membership.role, sc.DEFAULT_SCOPES)
    if scopes:
        bad = sc.unknown_scopes(scopes)
        if bad:
            raise ValidationFailed("Unknown scopes.", details={"scopes": bad})
        allowed = allowed & frozenset(scopes)
    refresh = RefreshToken.for_user(user)
    refresh["tenant"] = str(membership.tenant.pk)
    refresh["role"] = membership.role
    refresh["scopes"] = sorted(allowed)
    return _token_body(refresh, refresh.access_token, membership)


def _live_membership(claims: Any) -> Membership:
    membership = (
        Membership.objects.select_related("tenant", "user")
        .filter(user_id=claims.get(api_settings.USER_ID_CLAIM), tenant_id=claims.get("tenant"))
        .first()
    )
    if membership is None or not membership.user.is_active:
        raise Unauthenticated(INVALID)
    return membership


def token_refresh(*, refresh: str) -> dict[str, Any]:
    """A new access token, if the user is still an active member of the token's tenant."""
    try:
        token = RefreshToken(refresh)  # type: ignore[arg-type]
    except TokenError:
        raise Unauthenticated(INVALID) from None
    membership = _live_membership(token)
    allowed = sc.ROLE_SCOPES.get(membership.role, sc.DEFAULT_SCOPES) & frozenset(token.get("scopes") or [])
    token["role"] = membership.role
    token["scopes"] = sorted(allowed)
    return _token_body(token, token.access_token, membership)


def principal_for_access_token(raw: str) -> Principal:
    try:
        token = AccessToken(raw)  # type: ignore[arg-type]
    except TokenError:
        raise Unauthenticated(INVALID) from None
    membership = _live_membership(token)
    return principal_for_membership(
        membership, via="jwt", token_scopes=token.get("scopes") or [], expires_at=float(token["exp"])
    )
