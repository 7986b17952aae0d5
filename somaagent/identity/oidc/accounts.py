"""The local user behind a verified ID token: found by issuer + ``sub``, created or refused.

E-mail addresses never link accounts: a provider account that has not signed in
before gets a user of its own (``SOMA_OIDC_CREATE_USERS=1``, the default) or is
refused (``0``: an administrator links it first, as a single sign-on identity in
the admin). Its profile (e-mail, names) follows the claims; so do its
memberships and staff flag when a group mapping is configured
(``somaagent.identity.oidc.mapping``).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from somaagent.audit import Actor, audit_record
from somaagent.identity.oidc.errors import SignInRefused
from somaagent.identity.oidc.mapping import access_apply, access_from_claims
from somaagent.models import AuditLog, OidcIdentity

USERNAME_UNSAFE = re.compile(r"[^\w.@+-]")


def _refused(reason: str, message: str, claims: dict[str, Any]) -> SignInRefused:
    return SignInRefused(message, details={"reason": reason, "subject": claims["sub"]})


def _username(claims: dict[str, Any]) -> str:
    """``preferred_username`` (or the e-mail's local part) when free, else it with a short hash."""
    User = get_user_model()
    raw = str(claims.get("preferred_username") or str(claims.get("email") or "").split("@")[0] or "user")
    base = USERNAME_UNSAFE.sub("-", raw)[:100].strip("-.") or "user"
    if not User.objects.filter(username__iexact=base).exists():
        return base
    digest = hashlib.sha256(f"{claims['iss']}|{claims['sub']}".encode()).hexdigest()
    suffixed = f"{base}-{digest[:10]}"
    if not User.objects.filter(username__iexact=suffixed).exists():
        return suffixed
    return f"{base}-{digest[:32]}"


def _profile(claims: dict[str, Any]) -> dict[str, str]:
    email = claims.get("email")
    return {
        "email": email[:254] if isinstance(email, str) and claims.get("email_verified", True) else "",
        "first_name": str(claims.get("given_name") or "")[:150],
        "last_name": str(claims.get("family_name") or "")[:150],
    }


def _user_create(claims: dict[str, Any]) -> Any:
    User = get_user_model()
    user = User(username=_username(claims), **_profile(claims))
    user.set_unusable_password()
    user.save()
    return user


def _identity(claims: dict[str, Any], *, ip: str | None) -> tuple[OidcIdentity, bool]:
    """The linked identity, locked; created with a new user when allowed."""
    found = (
        OidcIdentity.objects.select_for_update()
        .select_related("user")
        .filter(issuer=claims["iss"], subject=claims["sub"])
        .first()
    )
    if found is not None:
        return found, False
    if not settings.SOMA_OIDC.create_users:
        raise _refused(
            "no_account",
            "You have no SomaAgent account yet; ask an administrator to create one for you.",
            claims,
        )
    try:
        with transaction.atomic():
            user = _user_create(claims)
            identity = OidcIdentity.objects.create(user=user, issuer=claims["iss"], subject=claims["sub"])
    except IntegrityError:  # the same person's other tab signed in first
        return OidcIdentity.objects.select_for_update().select_related("user").get(
            issuer=claims["iss"], subject=claims["sub"]
        ), False
    audit_record(
        actor=Actor(label=f"user:{user.get_username()}", user_id=user.pk, ip=ip),
        action=AuditLog.Action.OIDC_USER_CREATED,
        target=f"user:{user.get_username()}",
        details={"issuer": claims["iss"], "subject": claims["sub"]},
    )
    return identity, True


def oidc_sign_in(*, claims: dict[str, Any], ip: str | None) -> Any:
    """The user these verified claims sign in, with memberships re-applied; SignInRefused otherwise."""
    config = settings.SOMA_OIDC
    with transaction.atomic():
        identity, created = _identity(claims, ip=ip)
        user = identity.user
        if not user.is_active:
            raise _refused("account_deactivated", "Your SomaAgent account is deactivated.", claims)
        actor = Actor(label=f"user:{user.get_username()}", user_id=user.pk, ip=ip)
        profile = {k: v for k, v in _profile(claims).items() if v and getattr(user, k) != v}
        if profile:
            for name, value in profile.items():
                setattr(user, name, value)
            user.save(update_fields=list(profile))
        access = access_from_claims(claims, config) if config.maps_claims else None
        if access is not None:
            access_apply(user=user, access=access, actor=actor)
        identity.last_sign_in_at = timezone.now()
        identity.save(update_fields=["last_sign_in_at"])
        if access is None or not access.empty:
            audit_record(
                actor=actor,
                action=AuditLog.Action.OIDC_SIGN_IN,
                target=f"user:{user.get_username()}",
                details={"issuer": claims["iss"], "subject": claims["sub"], "new_user": created},
            )
    if access is not None and access.empty:
        # Committed above: their memberships are gone (open streams end), and they may not sign in.
        raise _refused(
            "no_access",
            "Your account at the identity provider grants no access to SomaAgent (no mapped group).",
            claims,
        )
    return user
