"""Values read from the database once per version, not once per request or turn.

Settings that staff change rarely and every request or turn reads (API keys,
policy data, model profiles, escalation rules, tool settings, budgets' limits)
are kept by each process in a ``Versioned`` cache: the value built from the
database, under the version it was built at. A change bumps the version (a
Redis counter per name and scope) after its transaction commits: any save or
delete of the rows a cache is built from does (``invalidate_on_change``,
connected in each app's ``ready()``), whoever makes it — admin, service,
shell. A process trusts what it holds for at most ``SOMA_CACHE_FRESH_SECONDS``
(default 1 s); after that one Redis ``GET`` tells it whether the value is
still current, and only a new version costs a database read. So a change (a revoked key, a denied
tool, a new profile) applies everywhere within about a second, without a
restart, and a hot path pays a dict lookup.

If Redis cannot be asked, the value is read from the database: a cache that
cannot be validated is never trusted past ``fresh_for``, so staleness stays
bounded (fail closed). Writers that bypass the signals (``QuerySet.update``,
raw SQL, a bump lost with Redis) are covered by ``max_age``: no value is older
than that (60 s).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import redis
from django.db import connection, models, transaction
from django.db.models.signals import post_delete, post_save

from somaagent.environment import env_float
from somaagent.redis_client import key, sync_redis

log = logging.getLogger(__name__)

T = TypeVar("T")
_ABSENT = "0"
_ANY = object()  # in ``dirty()``: every scope is being changed
REFRESH_WAIT_SECONDS = 0.5  # how long a reader waits for another thread's refresh of its scope


@dataclass
class _Entry(Generic[T]):
    value: T
    version: str
    checked: float  # time.monotonic() of the last check against Redis
    built: float


class Versioned(Generic[T]):
    """``get(scope)`` returns ``load(scope)`` as of the scope's current version."""

    def __init__(
        self,
        name: str,
        load: Callable[[Hashable], T],
        *,
        fresh_for: float | None = None,
        max_age: float = 60.0,
        max_entries: int = 10_000,
        shared_version: str | None = None,
    ) -> None:
        self.name = name
        # Several caches may follow one version (CONFIG: whatever staff edit in the admin).
        self.shared_version = shared_version
        self._load = load
        self.fresh_for = env_float("SOMA_CACHE_FRESH_SECONDS", 1.0) if fresh_for is None else fresh_for
        self.max_age = max_age
        self.max_entries = max_entries
        self._entries: dict[Hashable, _Entry[T]] = {}
        self._local = threading.local()  # .dirty: scopes changed by this thread's open transaction
        self._lock = threading.Lock()
        self._gates: dict[Hashable, threading.RLock] = {}  # one refresh per scope at a time

    def dirty(self) -> set[Hashable]:
        """Scopes this thread's open transaction changed (it must see its own change).

        Cleared when the transaction commits (the bump) and, if it rolled back, at the
        first read outside it (outside any transaction, or in the next one): a rollback
        never leaves a thread reading the database for good.
        """
        local = self._local
        # The transaction is known by its outermost atomic block: a set left by one that rolled
        # back is dropped as soon as the thread is outside it, or inside another one.
        outer = (
            connection.atomic_blocks[0] if connection.in_atomic_block and connection.atomic_blocks else None
        )
        dirty: set[Hashable] | None = getattr(local, "dirty", None)
        if dirty is None:
            dirty = local.dirty = set()
        elif dirty and (outer is None or outer is not getattr(local, "outer", None)):
            dirty.clear()
        local.outer = outer
        return dirty

    def _version_key(self, scope: Hashable) -> str:
        if self.shared_version is not None:
            return key("ver", self.shared_version)
        return key("ver", self.name, scope)

    def get(self, scope: Hashable = "") -> T:
        dirty = self.dirty()
        if dirty and (scope in dirty or _ANY in dirty):
            return self._load(scope)
        now = time.monotonic()
        entry = self._entries.get(scope)
        if entry is not None and now - entry.checked < self.fresh_for and now - entry.built < self.max_age:
            return entry.value
        # One thread per scope checks and reads while the others wait for its answer: a
        # burst of requests for one key in a new process reads the key once, not once each.
        # The wait is short and bounded, so a reader stuck behind a busy connection pool
        # never holds the others up for long: past it, each reads for itself as before.
        gate = self._gate(scope)
        got = gate.acquire(timeout=REFRESH_WAIT_SECONDS)
        try:
            if got:
                entry = self._entries.get(scope)
                now = time.monotonic()
                if (
                    entry is not None
                    and now - entry.checked < self.fresh_for
                    and now - entry.built < self.max_age
                ):
                    return entry.value  # refreshed by the thread this one waited for
            return self._refresh(scope, entry, now)
        finally:
            if got:
                gate.release()

    def _gate(self, scope: Hashable) -> threading.RLock:
        gate = self._gates.get(scope)
        if gate is None:
            with self._lock:
                if len(self._gates) >= self.max_entries:
                    self._gates.clear()
                gate = self._gates.setdefault(scope, threading.RLock())
        return gate

    def _refresh(self, scope: Hashable, entry: _Entry[T] | None, now: float) -> T:
        try:
            version = str(sync_redis().get(self._version_key(scope)) or _ABSENT)
        except redis.RedisError:
            log.debug("version check failed; reading %s from the database", self.name, exc_info=True)
            return self._load(scope)
        if entry is not None and entry.version == version and now - entry.built < self.max_age:
            entry.checked = now
            return entry.value
        value = self._load(scope)
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[scope] = _Entry(value=value, version=version, checked=now, built=now)
        return value

    def bump(self, scope: Hashable = "") -> None:
        """Make every process read ``scope`` again once the current transaction commits.

        Until then this thread reads it from the database each time (it may see its
        own uncommitted change); other threads keep the committed value.
        """
        self.dirty().add(scope)
        with self._lock:
            self._entries.pop(scope, None)
        transaction.on_commit(lambda: self._bump_now(scope))

    def _bump_now(self, scope: Hashable) -> None:
        self.dirty().discard(scope)
        with self._lock:
            self._entries.pop(scope, None)
        try:
            sync_redis().incr(self._version_key(scope))
        except redis.RedisError:
            # Other processes keep their value for at most max_age.
            log.warning("could not announce a change of %s", self.name, extra={"scope": str(scope)})

    def forget(self) -> None:
        """Drop this process's values (tests)."""
        with self._lock:
            self._entries.clear()


# Staff-edited configuration (model profiles and credentials, personas, UI settings, tool
# settings) shares one version: any change in the admin makes every process read it again.
CONFIG = "config"
_config_caches: list[Versioned[object]] = []


def config_cache(name: str, load: Callable[[Hashable], T]) -> Versioned[T]:
    """A cache of staff-edited configuration, read again after any ``config_changed``."""
    cache: Versioned[T] = Versioned(name, load, shared_version=CONFIG)
    _config_caches.append(cache)  # type: ignore[arg-type]
    return cache


def config_changed() -> None:
    """After the current transaction commits, every process reads the configuration again."""
    for cache in _config_caches:
        cache.dirty().add(_ANY)
        with cache._lock:
            cache._entries.clear()

    def announce() -> None:
        for cache in _config_caches:
            cache.dirty().discard(_ANY)
            with cache._lock:
                cache._entries.clear()
        try:
            sync_redis().incr(key("ver", CONFIG))
        except redis.RedisError:
            log.warning("could not announce a configuration change; processes see it within a minute")

    transaction.on_commit(announce)


def invalidate_on_change(model: type[models.Model], changed: Callable[[Any], None]) -> None:
    """Call ``changed(instance)`` whenever a ``model`` row is saved or deleted (from ``ready()``)."""

    def receiver(sender: Any, instance: Any, **_: Any) -> None:
        changed(instance)

    uid = f"versioned:{model._meta.label}:{getattr(changed, '__qualname__', id(changed))}"
    post_save.connect(receiver, sender=model, weak=False, dispatch_uid=uid + ":save")
    post_delete.connect(receiver, sender=model, weak=False, dispatch_uid=uid + ":delete")
