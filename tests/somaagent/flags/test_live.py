"""Running web and worker processes pick up flag changes within seconds, without a restart."""

from __future__ import annotations

import uuid

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from somaagent.celery import app
from somaagent.flags.services import flag_delete, flag_set
from tests.live import LiveSystem, wait_until

pytestmark = pytest.mark.integration


def _active(system: LiveSystem) -> list[str]:
    return httpx.get(f"{system.url}/readyz", timeout=20).json()["flags"]["active"]


def _worker_sees(name: str, tenant: object = None) -> bool:
    tenant_id = str(getattr(tenant, "pk", tenant)) if tenant is not None else None
    return app.send_task("soma.flag_evaluate", args=[name, tenant_id]).get(timeout=30)


def test_web_and_worker_see_changes_without_restart(live_system, tenant_key):
    name = f"live.flag-{uuid.uuid4().hex[:8]}"
    tenant = tenant_key.tenant
    try:
        assert name not in _active(live_system)
        assert _worker_sees(name) is False
        flag_set(name=name, enabled=True)
        wait_until(lambda: name in _active(live_system), timeout=20, interval=0.3, what="web sees the flag")
        wait_until(lambda: _worker_sees(name), timeout=20, interval=0.3, what="worker sees the flag")
        assert _worker_sees(name, tenant) is True  # no override: the global value
        flag_set(name=name, enabled=False, tenant=tenant)
        wait_until(
            lambda: not _worker_sees(name, tenant), timeout=20, interval=0.3, what="worker sees the override"
        )
        assert _worker_sees(name) is True
        flag_set(name=name, enabled=False)
        wait_until(lambda: name not in _active(live_system), timeout=20, interval=0.3, what="web sees it off")
    finally:
        flag_delete(name=name)
        flag_delete(name=name, tenant=tenant)


def test_a_flag_added_in_admin_reaches_the_running_web_process(live_system):
    name = f"admin.flag-{uuid.uuid4().hex[:8]}"
    staff = get_user_model().objects.create_superuser(f"staff-{uuid.uuid4().hex[:6]}", password="x" * 12)
    client = Client()
    client.force_login(staff)
    try:
        response = client.post(
            "/admin/flags/featureflag/add/",
            {"name": name, "tenant": "", "enabled": "on", "description": "from admin"},
        )
        assert response.status_code == 302, response.content[:500]
        wait_until(lambda: name in _active(live_system), timeout=20, interval=0.3, what="web sees the flag")
        bad = client.post("/admin/flags/featureflag/add/", {"name": "Not Valid!", "tenant": ""})
        assert bad.status_code == 200 and b"Lower-case letters" in bad.content
    finally:
        flag_delete(name=name)
        staff.delete()
