"""What a connection to one MCP server needs, and the checks a server entry must pass.

``ServerSpec`` is an immutable snapshot of an ``McpServer`` row with its secrets decrypted; it
lives only in memory for one listing or call (or a watcher) and never reaches a log or a result.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import InvalidToken

from somaagent.paths import BASE_DIR, VAR_DIR
from somaagent.secrets import decrypt
from tools.models import McpServer

SERVER_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|[-_](?=[a-z0-9]))*$")
# What OpenAI (and most providers) accept as a function name.
FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SEPARATOR = "__"
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def namespaced(server: str, tool: str) -> str | None:
    """``<server>__<tool>``, or None when that is not a valid function name."""
    name = f"{server}{SEPARATOR}{tool}"
    return name if FUNCTION_NAME.match(name) else None


@dataclass(frozen=True)
class Secrets:
    headers: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def dumps(self) -> str:
        return json.dumps({"headers": self.headers, "env": self.env}, sort_keys=True)

    @classmethod
    def loads(cls, text: str) -> Secrets:
        doc = json.loads(text) if text else {}
        return cls(headers=dict(doc.get("headers") or {}), env=dict(doc.get("env") or {}))


@dataclass(frozen=True)
class ServerSpec:
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    transport: str
    url: str
    command: tuple[str, ...]
    read_only_paths: tuple[str, ...]
    python_packages: bool
    allow_network: bool
    allow_private: bool
    allowed_tools: tuple[str, ...]
    timeout: float
    secrets: Secrets = field(repr=False)
    version: str  # changes whenever staff change the entry: cached lists are kept per version

    def offers(self, tool: str) -> bool:
        return "*" in self.allowed_tools or tool in self.allowed_tools


class SecretsUnreadable(Exception):
    """The stored secret cannot be decrypted with any configured Fernet key."""


def spec_of(server: McpServer) -> ServerSpec:
    try:
        secrets = Secrets.loads(decrypt(server.secret_encrypted)) if server.secret_encrypted else Secrets()
    except InvalidToken as exc:
        raise SecretsUnreadable(f"the secrets of MCP server {server.name!r} cannot be decrypted") from exc
    return ServerSpec(
        id=server.pk,
        tenant_id=server.tenant_id,
        name=server.name,
        transport=server.transport,
        url=server.url,
        command=tuple(server.command or ()),
        read_only_paths=tuple(server.read_only_paths or ()),
        python_packages=server.python_packages,
        allow_network=server.allow_network,
        allow_private=server.allow_private,
        allowed_tools=tuple(server.allowed_tools or ()),
        timeout=server.timeout_seconds,
        secrets=secrets,
        version=f"{server.updated_at.timestamp():.6f}" if server.updated_at else "0",
    )


def _string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def server_problems(server: McpServer, secrets: Secrets | None) -> dict[str, str]:
    """Why this entry cannot be saved, by field; empty when it can."""
    problems: dict[str, str] = {}
    if not SERVER_NAME.match(server.name or ""):
        problems["name"] = (
            "Use lower-case letters and digits, with single hyphens or underscores between them "
            "(its tools are offered as <name>__<tool>)."
        )
    if not _string_list(server.allowed_tools):
        problems["allowed_tools"] = 'A JSON list of tool names, ["*"] for all.'
    if not server.timeout_seconds or server.timeout_seconds <= 0 or server.timeout_seconds > 600:
        problems["timeout_seconds"] = "Between 0 and 600 seconds."
    if server.transport in (McpServer.Transport.STREAMABLE_HTTP, McpServer.Transport.SSE):
        if not (server.url or "").startswith(("http://", "https://")):
            problems["url"] = "An http:// or https:// URL."
        elif "@" in (server.url.split("/")[2] if server.url.count("/") >= 2 else ""):
            problems["url"] = "Put credentials in the headers or the bearer token, not in the URL."
        if server.command:
            problems["command"] = "Only for a stdio server."
    elif server.transport == McpServer.Transport.STDIO:
        if not _string_list(server.command) or not server.command:
            problems["command"] = (
                'A JSON list: the program and its arguments, e.g. ["/usr/bin/python3", "s.py"].'
            )
        elif not server.command[0].startswith("/"):
            problems["command"] = "The program must be an absolute path."
        if server.url:
            problems["url"] = "A stdio server has no URL."
        if not isinstance(server.read_only_paths, list) or not _string_list(server.read_only_paths or []):
            problems["read_only_paths"] = "A JSON list of absolute host paths."
        else:
            for raw in server.read_only_paths:
                path = Path(raw)
                resolved = path.resolve()
                if not path.is_absolute():
                    problems["read_only_paths"] = f"{raw!r} is not an absolute path."
                elif any(
                    _inside(resolved, Path(r).resolve()) or _inside(Path(r).resolve(), resolved)
                    for r in (BASE_DIR, VAR_DIR)
                ):
                    problems["read_only_paths"] = f"{raw!r} would show the project or var/ to the server."
                elif resolved == Path("/"):
                    problems["read_only_paths"] = "The whole filesystem cannot be bound."
    else:
        problems["transport"] = "Unknown transport."
    if secrets is not None:
        if any(not HEADER_NAME.match(k) or "\n" in v or "\r" in v for k, v in secrets.headers.items()):
            problems["headers"] = "Header names must be tokens and values single lines."
        if any(not ENV_NAME.match(k) for k in secrets.env):
            problems["env"] = "Environment variable names are letters, digits and underscores."
    return problems
