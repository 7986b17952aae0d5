"""API keys: ``soma_<prefix>_<secret>``; the prefix finds the row, a SHA-256 of the key is kept.

Keys are 256-bit random, so a fast hash is right (a slow KDF on every request
would be a denial-of-service lever); the unique prefix salts it. Comparison is
constant-time.

Each process keeps the key rows it has seen per data version
(``somaagent.versioned``): a request pays a dict lookup, not a query. Any save
of a key (revocation, new scopes or limit) or its deletion bumps that key's
version after commit, so a revoked key stops working everywhere within
``SOMA_CACHE_FRESH_SECONDS`` (1 s); a process that cannot ask Redis reads the
database.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Hashable
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from somaagent.audit import Actor, audit_record
from somaagent.errors import ValidationFailed
from somaagent.identity import scopes as sc
from somaagent.models import ApiKey, AuditLog, Tenant
from somaagent.versioned import Versioned

KEY_PREFIX = "soma_"
KEY_RE = re.compile(r"^soma_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")
PREFIX_PATTERN = "^[a-z0-9]{12}$"
PREFIX_RE = re.compile(PREFIX_PATTERN)
LAST_USED_RESOLUTION = timedelta(seconds=60)
_UNKNOWN_KEY_HASH = "0" * 64


def _hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def tenant_get_or_create(*, name: str) -> Tenant:
    tenant, _ = Tenant.objects.get_or_create(name=name)
    return tenant


def api_key_create(
    *,
    tenant: Tenant,
    name: str = "",
    scopes: list[str] | None = None,
    actor: Actor | None = None,
    rate_limit_per_minute: int | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; the plaintext is returned once and never stored (nor logged, nor audited)."""
    scopes = sorted(set(scopes or []))
    unknown = sc.unknown_scopes(scopes)
    if unknown:
        raise ValidationFailed(
            f"Unknown scopes: {', '.join(unknown)}.",
            details={"scopes": unknown, "known": list(sc.ALL_SCOPES)},
        )
    prefix = secrets.token_hex(6)
    raw = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        key = ApiKey.objects.create(
            tenant=tenant,
            name=name,
            prefix=prefix,
            secret_hash=_hash(raw),
            scopes=scopes,
            rate_limit_per_minute=rate_limit_per_minute,
        )
        audit_record(
            actor=actor or Actor.system(),
            action=AuditLog.Action.KEY_CREATED,
            tenant=tenant,
            target=f"key:{prefix}",
            details={"name": name, "scopes": scopes},
        )
    return key, raw


def _key_row(prefix: Hashable) -> ApiKey | None:
    return ApiKey.objects.select_related("tenant").filter(prefix=prefix).first()


# Read on every API request: once per version per process. The rows are shared: read-only.
_keys: Versioned[ApiKey | None] = Versioned("api_keys", _key_row)
# When this process last wrote each key's last_used_at (the cached row keeps the old value).
_last_used: dict[str, datetime] = {}


def api_key_changed(key: ApiKey) -> None:
    """A key row was saved or deleted (connected in ``somaagent.apps``): every process reads it again."""
    _keys.bump(key.prefix)


def api_key_authenticate(raw_key: str) -> ApiKey | None:
    """The active key matching ``raw_key``, or None; never raises on bad input."""
    match = KEY_RE.match(raw_key or "")
    if match is None:
        return None
    digest = _hash(raw_key)
    key = _keys.get(match.group(1))
    # Compare against a dummy when the prefix is unknown, so both paths do the same work.
    stored = key.secret_hash if key is not None else _UNKNOWN_KEY_HASH
    if not hmac.compare_digest(stored, digest) or key is None:
        return None
    if key.revoked_at is not None:
        return None
    _touch(key)
    return key


def _touch(key: ApiKey) -> None:
    """Record use at most once per ``LAST_USED_RESOLUTION`` per process (one UPDATE, no signal)."""
    now = timezone.now()
    last = max(filter(None, (key.last_used_at, _last_used.get(key.prefix))), default=None)
    if last is not None and now - last <= LAST_USED_RESOLUTION:
        return
    if len(_last_used) >= 10_000:
        _last_used.clear()
    _last_used[key.prefix] = now
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)


def api_key_revoke(*, prefix: str, actor: Actor | None = None, tenant: Tenant | None = None) -> ApiKey | None:
    """Revoke the key with ``prefix`` (only within ``tenant`` when given); None if there is none."""
    if not PREFIX_RE.match(prefix):
        return None  # not a prefix (and never text the database cannot hold)
    with transaction.atomic():
        keys = ApiKey.objects.select_for_update().select_related("tenant").filter(prefix=prefix)
        if tenant is not None:
            keys = keys.filter(tenant=tenant)
        key = keys.first()
        if key is None:
            return None
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
            audit_record(
                actor=actor or Actor.system(),
                action=AuditLog.Action.KEY_REVOKED,
                tenant=key.tenant,
                target=f"key:{key.prefix}",
                details={"name": key.name},
            )
    return key
