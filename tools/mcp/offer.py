"""A tenant's MCP tools as registry ``Tool`` objects, offered next to the built-in ones.

Only the tenant's own enabled servers are read (tenant isolation: another tenant's servers,
tools and credentials are never loaded for this one), only the tools on a server's allowlist are
offered, each as ``<server>__<tool>`` when that is a valid function name and its input schema is
a valid JSON schema (otherwise it is left out, with a log line saying why).
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Hashable
from typing import Any

from somaagent.versioned import config_cache
from tools.breaker import breaker_open_for, breaker_record
from tools.mcp.spec import SecretsUnreadable, ServerSpec, namespaced, spec_of
from tools.models import McpServer
from tools.registry import Tool, ToolContext, ToolError, ToolTimeout

log = logging.getLogger(__name__)
DESCRIPTION_MAX = 1000

# The SDK side (catalog, client, watch: the MCP SDK, pydantic and starlette, ~58 MB resident and
# ~0.5 s of import) is imported by the functions below when a tenant has an enabled server, so a
# process that never meets one does not pay for it. tests/somaagent/test_lazy_imports.py.


def _tenant_specs(tenant_id: Hashable) -> list[ServerSpec]:
    specs = []
    for server in McpServer.objects.for_tenant(str(tenant_id)).filter(enabled=True).order_by("name"):
        try:
            specs.append(spec_of(server))
        except SecretsUnreadable as exc:
            log.error("MCP server skipped", extra={"mcp_server": server.name, "error": str(exc)})
    return specs


# Read by every turn: once per configuration version (saving a server announces the change).
_specs = config_cache("mcp_servers", _tenant_specs)


def tenant_servers(*, tenant_id: uuid.UUID | str) -> list[ServerSpec]:
    return _specs.get(str(tenant_id))


def mcp_tools_for(*, tenant_id: uuid.UUID | str) -> list[Tool]:
    """The tools the tenant's enabled MCP servers offer (cached lists; see ``catalog``)."""
    specs = tenant_servers(tenant_id=tenant_id)
    if not specs:
        return []
    from tools.mcp.catalog import servers_tools
    from tools.mcp.watch import watch

    offered = []
    for spec, tools in zip(specs, servers_tools(specs), strict=True):
        watch(spec)
        for remote in tools:
            tool = _as_tool(spec, remote)
            if tool is not None:
                offered.append(tool)
    return offered


def _as_tool(spec: ServerSpec, remote: dict[str, Any]) -> Tool | None:
    if not spec.offers(remote["name"]):
        return None
    name = namespaced(spec.name, remote["name"])
    schema = remote.get("input_schema") or {"type": "object"}
    if name is None:
        log.info(
            "MCP tool not offered: not a valid function name",
            extra={"mcp_server": spec.name, "tool": remote["name"]},
        )
        return None
    from jsonschema import Draft202012Validator  # only once a server offers tools (~5 MB resident)
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError:
        log.info(
            "MCP tool not offered: invalid input schema",
            extra={"mcp_server": spec.name, "tool": remote["name"]},
        )
        return None
    description = f"[{spec.name}] {remote.get('description') or remote['name']}"[:DESCRIPTION_MAX]
    return Tool(
        name=name,
        description=description,
        parameters=schema,
        run=functools.partial(mcp_call, spec, remote["name"]),
        default_timeout=spec.timeout,
    )


def mcp_call(spec: ServerSpec, tool: str, args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """Run one MCP tool call from the tool task; a failing server trips its breaker."""
    if str(spec.tenant_id) != str(ctx.tenant_id):  # never: specs are loaded per tenant
        raise ToolError("This tool belongs to another tenant.", code="unknown_tool")
    from tools.mcp.catalog import server_breaker, tools_invalidate
    from tools.mcp.client import McpUnavailable, call_tool

    breaker = server_breaker(spec)
    wait = breaker_open_for(tool=breaker, tenant_id=spec.tenant_id)
    if wait is not None:
        raise ToolError(
            f"The MCP server {spec.name!r} failed too often and is paused; try again in {wait} s.",
            code="circuit_open",
            data={"server": spec.name},
        )
    try:
        outcome = call_tool(spec, tool=tool, args=args, timeout=ctx.timeout)
    except (McpUnavailable, ToolTimeout):
        breaker_record(tool=breaker, tenant_id=spec.tenant_id, ok=False)
        raise
    breaker_record(tool=breaker, tenant_id=spec.tenant_id, ok=True)
    if outcome.list_changed:
        tools_invalidate(spec)
    if outcome.is_error:
        message = (outcome.value.get("text") or "the tool reported an error")[:2000]
        raise ToolError(
            f"{spec.name}/{tool} failed: {message}", code="mcp_tool_error", data={"server": spec.name}
        )
    return {"server": spec.name, "tool": tool, **outcome.value}
