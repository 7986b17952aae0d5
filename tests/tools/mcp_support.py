"""Helpers for the MCP tests: stub MCP servers over HTTP and server entries saved like staff do."""

from __future__ import annotations

import uuid
from typing import Any

from somaagent.audit import Actor
from tools.mcp.services import mcp_server_save
from tools.mcp.spec import Secrets
from tools.models import McpServer


def add_server(
    tenant: Any, *, name: str | None = None, secrets: Secrets | None = None, **fields: Any
) -> McpServer:
    fields.setdefault("allowed_tools", ["*"])
    fields.setdefault("allow_private", True)
    fields.setdefault("timeout_seconds", 5.0)
    server = McpServer(tenant=tenant, name=name or f"s{uuid.uuid4().hex[:8]}", **fields)
    return mcp_server_save(server=server, secrets=secrets, actor=Actor.system("test"))
