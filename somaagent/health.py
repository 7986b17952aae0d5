"""Liveness and readiness (SPEC §6): ``/healthz`` and ``/readyz`` with details per dependency."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from somaagent.redis_client import sync_redis

Check = Callable[[], dict[str, Any]]
# name -> (check, required); packages add their adapters' checks.
CHECKS: dict[str, tuple[Check, bool]] = {}


def register_check(name: str, check: Check, *, required: bool = True) -> None:
    CHECKS[name] = (check, required)


def _database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"vendor": connection.vendor}


def _redis() -> dict[str, Any]:
    sync_redis().ping()
    return {}


def _broker() -> dict[str, Any]:
    from somaagent.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return {
            "transport": conn.transport_cls
            if isinstance(conn.transport_cls, str)
            else str(conn.transport_cls)
        }


register_check("database", _database)
register_check("redis", _redis)
register_check("broker", _broker)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    details: dict[str, Any] = {}
    ready = True
    for name, (check, required) in CHECKS.items():
        started = time.perf_counter()
        try:
            info = check()
            details[name] = {"ok": True, "required": required, **info}
        except Exception as exc:  # any failure of a dependency is reported, not raised
            details[name] = {"ok": False, "required": required, "error": repr(exc)[:300]}
            ready = ready and not required
        details[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return JsonResponse(
        {"status": "ready" if ready else "not_ready", "checks": details}, status=200 if ready else 503
    )
