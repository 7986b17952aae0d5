"""Feature flags: stored in the database, cached in Redis and in each process.

``flag_enabled(name, tenant=None)`` costs a dict lookup. Each process keeps a
snapshot of every flag and, at most every ``SOMA_FLAGS_REFRESH_SECONDS``, asks
Redis for the flags version (one GET). A change (``flag_set``, the admin)
increments that version after its transaction commits, so every running web
and worker process sees it within that period, without a restart. The snapshot
itself is cached in Redis under its version (built from the database by the
first process that misses it), so a change costs one database read per
version, not one per process. If Redis is unreachable a process keeps its last
snapshot, or reads the database. Snapshots also expire after
``SNAPSHOT_TTL`` seconds, which bounds staleness if a version bump was lost.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis
from django.conf import settings
from django.db import transaction

from somaagent.flags.models import FeatureFlag
from somaagent.redis_client import key, sync_redis

log = logging.getLogger(__name__)

SNAPSHOT_TTL = 60


@dataclass(frozen=True)
class FlagsSnapshot:
    version: int
    globals: dict[str, bool] = field(default_factory=dict)
    tenants: dict[str, dict[str, bool]] = field(default_factory=dict)

    def enabled(self, name: str, tenant: str | None = None, default: bool = False) -> bool:
        if tenant is not None:
            value = self.tenants.get(tenant, {}).get(name)
            if value is not None:
                return value
        return self.globals.get(name, default)

    def active(self) -> list[str]:
        """Flags that are on: ``name`` globally, ``name@tenant-id`` for a tenant override."""
        on = [n for n, v in self.globals.items() if v]
        on += [f"{n}@{t}" for t, flags in self.tenants.items() for n, v in flags.items() if v]
        return sorted(on)

    def dumps(self) -> str:
        return json.dumps({"g": self.globals, "t": self.tenants}, separators=(",", ":"))

    @classmethod
    def loads(cls, version: int, raw: bytes | str) -> FlagsSnapshot:
        doc = json.loads(raw)
        return cls(version=version, globals=doc["g"], tenants=doc["t"])


def _version_key() -> str:
    return key("flags", "version")


def _snapshot_key(version: int) -> str:
    return key("flags", "snapshot", version)


def _from_database(version: int) -> FlagsSnapshot:
    globals_: dict[str, bool] = {}
    tenants: dict[str, dict[str, bool]] = {}
    for name, tenant_id, enabled in FeatureFlag.objects.values_list("name", "tenant_id", "enabled"):
        if tenant_id is None:
            globals_[name] = enabled
        else:
            tenants.setdefault(str(tenant_id), {})[name] = enabled
    return FlagsSnapshot(version=version, globals=globals_, tenants=tenants)


class _ProcessCache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = 0
        self.snapshot: FlagsSnapshot | None = None
        self.checked_at = 0.0
        self.loaded_at = 0.0


_cache = _ProcessCache()


def _fetch(current: FlagsSnapshot | None, loaded_at: float) -> FlagsSnapshot:
    client = sync_redis()
    version = int(client.get(_version_key()) or 0)
    fresh = time.monotonic() - loaded_at < SNAPSHOT_TTL
    if current is not None and current.version == version and fresh:
        return current
    raw = client.get(_snapshot_key(version))
    if raw is not None:
        return FlagsSnapshot.loads(version, raw)
    snapshot = _from_database(version)
    client.set(_snapshot_key(version), snapshot.dumps(), ex=SNAPSHOT_TTL)
    return snapshot


def flags_snapshot() -> FlagsSnapshot:
    """This process's view of every flag, refreshed at most every few seconds."""
    now = time.monotonic()
    cache = _cache
    if (
        cache.snapshot is not None
        and cache.pid == os.getpid()
        and now - cache.checked_at < settings.SOMA_OPS.flags_refresh_seconds
    ):
        return cache.snapshot
    with cache.lock:
        current = cache.snapshot if cache.pid == os.getpid() else None
        try:
            snapshot = _fetch(current, cache.loaded_at)
        except redis.RedisError:
            log.warning("feature flags: Redis unreachable; using the database", exc_info=True)
            snapshot = _from_database(current.version if current else -1)
        if snapshot is not current:
            cache.loaded_at = now
        cache.snapshot, cache.pid, cache.checked_at = snapshot, os.getpid(), now
        return snapshot


def _tenant_id(tenant: Any) -> str | None:
    if tenant is None:
        return None
    return str(getattr(tenant, "pk", tenant))


def flag_enabled(name: str, tenant: Any = None, *, default: bool = False) -> bool:
    """Whether ``name`` is on for ``tenant`` (a Tenant or its id): its override, else the global value."""
    return flags_snapshot().enabled(name, _tenant_id(tenant), default)


def flags_changed() -> None:
    """Tell every process that flags changed, once the current transaction commits."""

    def bump() -> None:
        try:
            sync_redis().incr(_version_key())
        except redis.RedisError:
            log.warning("feature flags: could not bump the version; processes catch up within a minute")

    transaction.on_commit(bump)


def flag_set(*, name: str, enabled: bool, tenant: Any = None, description: str | None = None) -> Any:
    """Create or update a flag (globally, or for one tenant)."""
    defaults: dict[str, Any] = {"enabled": enabled}
    if description is not None:
        defaults["description"] = description
    with transaction.atomic():
        flag, _ = FeatureFlag.objects.update_or_create(
            name=name,
            tenant_id=_tenant_id(tenant),  # type: ignore[misc]
            defaults=defaults,
        )
        flags_changed()
    return flag


def flag_delete(*, name: str, tenant: Any = None) -> int:
    """Remove a flag (or a tenant's override); returns how many rows went."""
    with transaction.atomic():
        deleted, _ = FeatureFlag.objects.filter(name=name, tenant_id=_tenant_id(tenant)).delete()  # type: ignore[misc]
        flags_changed()
    return deleted
