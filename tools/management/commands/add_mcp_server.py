"""``manage.py add_mcp_server --tenant NAME --name NAME (--url URL | --command JSON) ...``.

Adds (or, with the same tenant and name, updates) an MCP server entry. Secrets never go on the
command line, where ``ps`` shows them: ``--bearer-token-env VAR`` reads a token from the
environment, ``--secrets-stdin`` reads ``{"headers": {...}, "env": {...}, "bearer_token": "..."}``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from somaagent.audit import Actor
from somaagent.errors import ValidationFailed
from somaagent.models import Tenant
from tools.mcp.services import mcp_server_save
from tools.mcp.spec import Secrets
from tools.models import McpServer


def _json(raw: str, what: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise CommandError(f"{what} is not JSON: {exc}") from None


class Command(BaseCommand):
    help = "Add or update an MCP server (a tool source) for a tenant."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="an existing tenant's name")
        parser.add_argument("--name", required=True, help="its tools are offered as <name>__<tool>")
        parser.add_argument("--transport", choices=[t.value for t in McpServer.Transport], default=None)
        parser.add_argument("--url", default="", help="streamable HTTP or SSE endpoint")
        parser.add_argument(
            "--command", dest="argv", default="", help="stdio: JSON argv, e.g. '[\"/usr/bin/x\"]'"
        )
        parser.add_argument(
            "--read-only-path", action="append", default=[], help="stdio: host path bound read-only"
        )
        parser.add_argument(
            "--python-packages", action="store_true", help="stdio: bind installed Python packages"
        )
        parser.add_argument("--allow-network", action="store_true", help="stdio: grant the network")
        parser.add_argument("--allow-private", action="store_true", help="HTTP: allow private addresses")
        parser.add_argument("--tools", default="", help='comma-separated allowlist; "*" for all')
        parser.add_argument("--timeout", type=float, default=30.0)
        parser.add_argument("--disabled", action="store_true")
        parser.add_argument(
            "--bearer-token-env", default="", help="name of an environment variable holding a token"
        )
        parser.add_argument("--secrets-stdin", action="store_true", help="read secrets as JSON from stdin")

    def _secrets(self, options: dict[str, Any]) -> Secrets | None:
        headers: dict[str, str] = {}
        env: dict[str, str] = {}
        if options["secrets_stdin"]:
            doc = _json(sys.stdin.read(), "stdin")
            if not isinstance(doc, dict):
                raise CommandError("stdin must hold a JSON object")
            headers.update(doc.get("headers") or {})
            env.update(doc.get("env") or {})
            if doc.get("bearer_token"):
                headers["Authorization"] = f"Bearer {doc['bearer_token']}"
        if options["bearer_token_env"]:
            token = os.environ.get(options["bearer_token_env"], "")
            if not token:
                raise CommandError(
                    f"the environment variable {options['bearer_token_env']} is empty or unset"
                )
            headers["Authorization"] = f"Bearer {token}"
        if not all(isinstance(v, str) for v in [*headers.values(), *env.values()]):
            raise CommandError("header and environment values must be strings")
        return Secrets(headers=headers, env=env) if headers or env else None

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(name=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"no tenant named {options['tenant']!r}")
        server = McpServer.objects.filter(tenant=tenant, name=options["name"]).first() or McpServer(
            tenant=tenant, name=options["name"]
        )
        command = _json(options["argv"], "--command") if options["argv"] else []
        server.transport = options["transport"] or ("stdio" if command else "streamable_http")
        server.url = options["url"]
        server.command = command
        server.read_only_paths = options["read_only_path"]
        server.python_packages = options["python_packages"]
        server.allow_network = options["allow_network"]
        server.allow_private = options["allow_private"]
        server.allowed_tools = [t.strip() for t in options["tools"].split(",") if t.strip()]
        server.timeout_seconds = options["timeout"]
        server.enabled = not options["disabled"]
        try:
            mcp_server_save(server=server, secrets=self._secrets(options), actor=Actor.cli())
        except ValidationFailed as exc:
            details = "; ".join(f"{k}: {v}" for k, v in (exc.details or {}).items())
            raise CommandError(f"{exc.message} {details}") from None
        offered = ", ".join(server.allowed_tools) or "none (give --tools)"
        self.stdout.write(
            f"MCP server {server.name} saved for tenant {tenant.name}; tools offered: {offered}"
        )
