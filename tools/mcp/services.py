"""Saving an MCP server entry: checked, secrets encrypted with the newest Fernet key, audited."""

from __future__ import annotations

from django.db import transaction

from somaagent.audit import Actor, audit_record
from somaagent.errors import ValidationFailed
from somaagent.models import AuditLog
from somaagent.secrets import encrypt
from tools.mcp.spec import Secrets, server_problems
from tools.models import McpServer


def mcp_server_save(*, server: McpServer, secrets: Secrets | None, actor: Actor) -> McpServer:
    """Create or update ``server``; ``secrets`` replaces the stored ones when given (None keeps them).

    The audit entry names what changed, never a secret's value.
    """
    problems = server_problems(server, secrets)
    if problems:
        raise ValidationFailed("The MCP server entry is not valid.", details=problems)
    created = server._state.adding
    with transaction.atomic():
        if secrets is not None:
            empty = not secrets.headers and not secrets.env
            server.secret_encrypted = "" if empty else encrypt(secrets.dumps())
        server.save()
        audit_record(
            actor=actor,
            action=AuditLog.Action.SETTINGS_CHANGED,
            target=f"mcp_server:{server.name}",
            tenant=server.tenant,
            details={
                "created": created,
                "transport": server.transport,
                "allowed_tools": server.allowed_tools,
                "enabled": server.enabled,
                "secrets_changed": secrets is not None,
                "header_names": sorted(secrets.headers) if secrets is not None else None,
                "env_names": sorted(secrets.env) if secrets is not None else None,
            },
        )
    return server
