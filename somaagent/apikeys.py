"""API keys: ``soma_<prefix>_<secret>``; the prefix finds the row, a SHA-256 of the key is kept.

Keys are 256-bit random, so a fast hash is right (a slow KDF on every request
would be a denial-of-service lever); the unique prefix salts it. Comparison is
constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from somaagent.models import ApiKey, Tenant

KEY_RE = re.compile(r"^soma_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")
LAST_USED_RESOLUTION = timedelta(seconds=60)


def _hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def tenant_get_or_create(*, name: str) -> Tenant:
    tenant, _ = Tenant.objects.get_or_create(name=name)
    return tenant


def api_key_create(*, tenant: Tenant, name: str = "", scopes: list[str] | None = None) -> tuple[ApiKey, str]:
    """Create a key; the plaintext is returned once and never stored."""
    prefix = secrets.token_hex(6)
    raw = f"soma_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        tenant=tenant, name=name, prefix=prefix, secret_hash=_hash(raw), scopes=scopes or []
    )
    return key, raw


def api_key_authenticate(raw_key: str) -> ApiKey | None:
    """The active key matching ``raw_key``, or None; never raises on bad input."""
    match = KEY_RE.match(raw_key or "")
    if match is None:
        return None
    key = ApiKey.objects.select_related("tenant").filter(prefix=match.group(1)).first()
    if key is None or not hmac.compare_digest(key.secret_hash, _hash(raw_key)):
        return None
    if key.revoked_at is not None:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


def api_key_revoke(*, prefix: str) -> ApiKey | None:
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().filter(prefix=prefix).first()
        if key is None:
            return None
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
    return key
