"""Which tools a tenant/persona gets, and with what settings."""

from __future__ import annotations

import pytest

from somaagent.models import Persona, Tenant
from tests.tools.conftest import tool_settings
from tools.models import ToolSetting
from tools.search import search_port
from tools.selectors import offered_specs, tools_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant() -> Tenant:
    return Tenant.objects.create(name="acme")


def names(specs: list[dict]) -> list[str]:
    return sorted(s["function"]["name"] for s in specs)


def test_defaults_offer_the_safe_tools_and_not_web_search_without_a_url(tenant: Tenant) -> None:
    search_port.cache_clear()
    with tool_settings(search_url=""):
        offered = names(offered_specs(tools_for(tenant_id=tenant.pk, persona_id=None)))
    search_port.cache_clear()
    assert offered == ["current_time", "document_search", "memory_recall", "python"]


def test_web_search_is_offered_when_configured(tenant: Tenant) -> None:
    search_port.cache_clear()
    with tool_settings(search_url="http://search.invalid"):
        offered = names(offered_specs(tools_for(tenant_id=tenant.pk, persona_id=None)))
    search_port.cache_clear()
    assert "web_search" in offered


def test_tenant_rows_enable_and_disable(tenant: Tenant) -> None:
    ToolSetting.objects.create(tenant=tenant, tool="python", enabled=False)
    ToolSetting.objects.create(
        tenant=tenant, tool="http_fetch", enabled=True, timeout_seconds=3, config={"allowed_hosts": ["x.org"]}
    )
    tools = tools_for(tenant_id=tenant.pk, persona_id=None)
    assert not tools["python"].enabled
    assert tools["http_fetch"].usable and tools["http_fetch"].timeout == 3
    assert tools["http_fetch"].config["allowed_hosts"] == ["x.org"]
    assert tools["http_fetch"].config["max_bytes"] == 262_144  # defaults fill the rest


def test_a_persona_row_wins_over_the_tenant_row(tenant: Tenant) -> None:
    persona = Persona.objects.create(tenant=tenant, name="coder")
    ToolSetting.objects.create(tenant=tenant, tool="python", enabled=False)
    ToolSetting.objects.create(tenant=tenant, persona=persona, tool="python", enabled=True)
    assert tools_for(tenant_id=tenant.pk, persona_id=persona.pk)["python"].enabled
    assert not tools_for(tenant_id=tenant.pk, persona_id=None)["python"].enabled


def test_another_tenants_rows_do_not_apply(tenant: Tenant) -> None:
    other = Tenant.objects.create(name="other")
    ToolSetting.objects.create(tenant=other, tool="python", enabled=False)
    assert tools_for(tenant_id=tenant.pk, persona_id=None)["python"].enabled
