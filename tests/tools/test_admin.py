"""Staff configure tools in admin; tool runs are read-only there."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from somaagent.models import Persona, Tenant
from tools.models import ToolSetting
from tools.selectors import tools_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_superuser("staff", "s@example.org", "pw-long-enough")
    client.force_login(user)
    return client


def post(staff, **fields):
    data = {"tool": "http_fetch", "enabled": "on", "timeout_seconds": "", "config": "{}", **fields}
    return staff.post("/admin/tools/toolsetting/add/", data)


def test_staff_enable_http_fetch_with_an_allowlist(staff) -> None:
    tenant = Tenant.objects.create(name="acme")
    response = post(staff, tenant=tenant.pk, config='{"allowed_hosts": ["docs.example.org"]}')
    assert response.status_code == 302, response.content[:2000]
    effective = tools_for(tenant_id=tenant.pk, persona_id=None)["http_fetch"]
    assert effective.usable and effective.config["allowed_hosts"] == ["docs.example.org"]


def test_an_invalid_config_is_refused(staff) -> None:
    tenant = Tenant.objects.create(name="acme")
    response = post(staff, tenant=tenant.pk, config='{"allowed_hosts": "not-a-list"}')
    assert response.status_code == 200 and b"Invalid configuration for http_fetch" in response.content
    assert not ToolSetting.objects.exists()


def test_a_persona_of_another_tenant_is_refused(staff) -> None:
    tenant = Tenant.objects.create(name="acme")
    other = Persona.objects.create(tenant=Tenant.objects.create(name="other"), name="p")
    response = post(staff, tenant=tenant.pk, persona=other.pk)
    assert response.status_code == 200 and b"belongs to another tenant" in response.content
    assert not ToolSetting.objects.exists()


def test_tool_runs_are_listed_read_only(staff) -> None:
    assert staff.get("/admin/tools/toolrun/").status_code == 200
    assert staff.get("/admin/tools/toolrun/add/").status_code == 403
    assert staff.get("/admin/tools/toolsetting/add/").status_code == 200


def test_a_tool_run_shows_its_args_and_result(staff) -> None:
    from tests.tools.test_execute import make_run

    run = make_run(args={"timezone": "UTC"}, status="success", result={"iso": "<b>2030</b>"})
    page = staff.get(f"/admin/tools/toolrun/{run.pk}/change/")
    assert page.status_code == 200
    assert b"&lt;b&gt;2030&lt;/b&gt;" in page.content and b"<b>2030</b>" not in page.content


def test_the_tool_list_warns_when_the_python_tool_is_disabled(staff) -> None:
    import tools.sandbox as chooser
    from tests.tools.conftest import tool_settings

    chooser.sandbox_reset()
    try:
        with tool_settings(sandbox_mode="off"):
            response = staff.get("/admin/tools/toolsetting/")
    finally:
        chooser.sandbox_reset()
    assert response.status_code == 200
    assert b"Tool python is not offered to the model" in response.content
