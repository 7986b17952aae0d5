"""Liveness and readiness (SPEC §6): ``/healthz`` and ``/readyz`` with details per dependency.

Packages register a check for each dependency they bring (``register_check``);
a check returns a dict of details or raises. ``/readyz`` runs every check at
once in a small thread pool, each bounded by ``SOMA_READYZ_TIMEOUT_SECONDS``,
caches the answer for ``SOMA_READYZ_CACHE_SECONDS`` and answers 503 when a
required check fails. ``SOMA_READYZ_REQUIRED`` (comma-separated names)
overrides which checks are required. The view is async, so a hanging
dependency never blocks the process's other requests.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import close_old_connections, connection, connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from somaagent.flags.services import flags_snapshot
from somaagent.ops_auth import bearer_is_ops_token
from somaagent.policy import policy_port
from somaagent.redis_client import sync_redis

Check = Callable[[], dict[str, Any]]
# name -> (check, required); packages add their adapters' checks.
CHECKS: dict[str, tuple[Check, bool]] = {}

_executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="readyz")
_inflight: dict[str, Future[dict[str, Any]]] = {}
_inflight_lock = threading.Lock()
_cache: tuple[float, int, dict[str, Any]] | None = None


def register_check(name: str, check: Check, *, required: bool = True) -> None:
    CHECKS[name] = (check, required)


def database_check() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"vendor": connection.vendor}


def redis_check() -> dict[str, Any]:
    sync_redis().ping()
    return {}


def broker_check() -> dict[str, Any]:
    with current_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return {
            "transport": conn.transport_cls
            if isinstance(conn.transport_cls, str)
            else str(conn.transport_cls)
        }


def policy_check() -> dict[str, Any]:
    """The policy adapter in use; its own ``health()`` when it has one (OPA answers ``/health``).

    Not required by default: the policy port fails closed on its own.
    """
    port = policy_port()
    info: dict[str, Any] = {"adapter": getattr(port, "name", type(port).__name__)}
    health = getattr(port, "health", None)
    if callable(health):
        info.update(health() or {})
    return info


def core_checks_register() -> None:
    """The core's own checks (``SomaAgentConfig.ready``); the apps add their adapters' checks."""
    register_check("database", database_check)
    register_check("redis", redis_check)
    register_check("broker", broker_check)
    register_check("policy", policy_check, required=False)


def _is_required(name: str, default: bool) -> bool:
    override = settings.SOMA_OPS.readyz_required
    return default if override is None else name in override


def _submit(name: str, check: Check) -> Future[dict[str, Any]]:
    """One run per check at a time: a check still hanging is not started again."""
    with _inflight_lock:
        running = _inflight.get(name)
        if running is not None and not running.done():
            return running
        future = _executor.submit(_on_own_connection, check)
        _inflight[name] = future
        return future


def _on_own_connection(check: Check) -> dict[str, Any]:
    """Runs a check on a fresh connection and gives it back (to the pool) afterwards."""
    close_old_connections()
    try:
        return check()
    finally:
        connections.close_all()


async def _run(name: str, check: Check, required: bool, timeout: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        info = await asyncio.wait_for(asyncio.wrap_future(_submit(name, check)), timeout)
        result = {"ok": True, "required": required, **info}
    except TimeoutError:
        result = {"ok": False, "required": required, "error": f"no answer within {timeout:g}s"}
    except Exception as exc:  # any failure of a dependency is reported, not raised
        result = {"ok": False, "required": required, "error": repr(exc)[:300]}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


async def readiness() -> tuple[int, dict[str, Any]]:
    """(status code, body), computed at most once per cache period."""
    global _cache
    now = time.monotonic()
    if _cache is not None and now - _cache[0] < settings.SOMA_OPS.readyz_cache_seconds:
        return _cache[1], _cache[2]
    timeout = settings.SOMA_OPS.readyz_timeout_seconds
    names = list(CHECKS)
    results = await asyncio.gather(
        *(_run(n, CHECKS[n][0], _is_required(n, CHECKS[n][1]), timeout) for n in names)
    )
    details = dict(zip(names, results, strict=True))
    ready = all(r["ok"] or not r["required"] for r in results)
    body: dict[str, Any] = {"status": "ready" if ready else "not_ready", "checks": details}
    try:
        body["flags"] = await asyncio.wait_for(
            asyncio.wrap_future(_executor.submit(_on_own_connection, _active_flags)), timeout
        )
    except TimeoutError:
        body["flags"] = {"error": f"no answer within {timeout:g}s"}
    status = 200 if ready else 503
    _cache = (time.monotonic(), status, body)
    return status, body


def _active_flags() -> dict[str, Any]:
    try:
        snapshot = flags_snapshot()
    except Exception as exc:  # flags are informative here; readiness does not depend on them
        return {"error": repr(exc)[:300]}
    return {"version": snapshot.version, "active": snapshot.active()}


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


PUBLIC_CHECK_FIELDS = ("ok", "required", "ms")


def redacted(body: dict[str, Any]) -> dict[str, Any]:
    """What anyone may see: ready or not, and each check's ok/required/ms; no error text,
    versions or addresses (they help an attacker more than a load balancer)."""
    checks = {
        name: {k: v for k, v in result.items() if k in PUBLIC_CHECK_FIELDS}
        for name, result in body["checks"].items()
    }
    return {"status": body["status"], "checks": checks, "details": "need the metrics token (PROD)"}


@require_GET
async def readyz(request: HttpRequest) -> JsonResponse:
    status, body = await readiness()
    if not settings.SOMA_OPS.details_public and not bearer_is_ops_token(
        request.headers.get("Authorization", "")
    ):
        body = redacted(body)
    return JsonResponse(body, status=status)
