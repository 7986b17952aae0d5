"""Reads: which tools a tenant/persona has, with what settings."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from somaagent.versioned import config_cache
from tools.mcp.offer import mcp_tools_for
from tools.models import ToolSetting
from tools.registry import Tool, all_tools


@dataclass(frozen=True)
class EffectiveTool:
    tool: Tool
    enabled: bool
    timeout: float
    config: dict[str, Any]
    unavailable: str | None

    @property
    def usable(self) -> bool:
        return self.enabled and self.unavailable is None


def _tenant_rows(tenant_id: Any) -> list[ToolSetting]:
    return list(ToolSetting.objects.for_tenant(tenant_id).order_by())


# Read by every turn: once per configuration version (the admin announces changes).
_settings = config_cache("tool_settings", _tenant_rows)


def tools_for(*, tenant_id: uuid.UUID | str, persona_id: uuid.UUID | str | None) -> dict[str, EffectiveTool]:
    """Every registered tool and the tenant's MCP tools, with their effective settings: persona row
    over tenant row over defaults."""
    rows = _settings.get(str(tenant_id))
    tenant_rows = {r.tool: r for r in rows if r.persona_id is None}
    persona = str(persona_id) if persona_id else None
    persona_rows = {r.tool: r for r in rows if r.persona_id is not None and str(r.persona_id) == persona}
    default_timeout = settings.SOMA.tools.default_timeout_seconds
    effective = {}
    for tool in [*all_tools(), *mcp_tools_for(tenant_id=tenant_id)]:
        enabled = tool.default_enabled
        timeout = tool.default_timeout or default_timeout
        config = dict(tool.default_config)
        for row in (tenant_rows.get(tool.name), persona_rows.get(tool.name)):
            if row is None:
                continue
            enabled = row.enabled
            timeout = row.timeout_seconds or timeout
            config.update(row.config or {})
        effective[tool.name] = EffectiveTool(
            tool=tool, enabled=enabled, timeout=timeout, config=config, unavailable=tool.unavailable()
        )
    return effective


def offered_specs(effective: dict[str, EffectiveTool]) -> list[dict[str, Any]]:
    """The ``tools`` list for the model: enabled tools this deployment can run."""
    return [e.tool.spec() for e in effective.values() if e.usable]
