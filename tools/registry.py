"""The tool registry: the ``Tool`` type and the tools this process knows by name.

A tool is a name, a description, a JSON schema for its arguments, a function
``run(args, ctx) -> dict`` and, optionally, a JSON schema for the settings
staff give it in admin. The built-in tools (one module each in ``tools/builtin/``)
are registered by the tools app's ``ready()`` (``tools.builtin.builtins_register``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

# A tool that fails for a reason the model should see raises ToolError (status error) or
# ToolTimeout (status timeout); ``data`` is kept in the result next to the message.


class ToolError(Exception):
    status = "error"

    def __init__(self, message: str, *, code: str = "tool_error", data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.data = data or {}

    def as_result(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.data}


class ToolTimeout(ToolError):
    status = "timeout"

    def __init__(self, message: str, *, data: dict[str, Any] | None = None) -> None:
        super().__init__(message, code="timeout", data=data)


@dataclass(frozen=True)
class ToolContext:
    tenant_id: str
    persona_id: str | None
    session_id: str
    request_id: str
    timeout: float
    config: dict[str, Any]
    memory_namespace: str = ""  # the session's memory scope (memory.port.namespace_for)
    session_owner_id: Any = None  # the member who started the session (their private documents)


def _always_available() -> str | None:
    return None


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    run: Callable[[dict[str, Any], ToolContext], dict[str, Any]]
    config_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
    default_config: dict[str, Any] = field(default_factory=dict)
    default_enabled: bool = True
    default_timeout: float | None = None
    # None when the tool can be used in this deployment, else why not (e.g. a missing URL).
    unavailable: Callable[[], str | None] = _always_available
    # Whoever approves a call of it (docs/approvals.md) may change its arguments first.
    args_editable: bool = True

    def spec(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry offered to the model."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


REGISTRY: dict[str, Tool] = {}


def register(tool: Tool) -> Tool:
    """Known by name from now on. Its schemas are checked when first used (``schema_errors``
    checks them all; a test runs it): jsonschema costs a process ~5 MB resident, and a web
    process or a worker that validates no tool call never loads it."""
    REGISTRY[tool.name] = tool
    return tool


def schema_errors(tool: Tool) -> None:
    """Raise jsonschema's SchemaError if the tool's argument or settings schema is not valid."""
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(tool.parameters)
    Draft202012Validator.check_schema(tool.config_schema)


def all_tools() -> list[Tool]:
    return sorted(REGISTRY.values(), key=lambda t: t.name)


def get_tool(name: str) -> Tool | None:
    return REGISTRY.get(name)


def _first_error(validator: Draft202012Validator, document: Any) -> str | None:
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    error = errors[0]
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"{where}: {error.message}"[:500]


@functools.lru_cache(maxsize=1024)
def _schema_validator(schema: str) -> Draft202012Validator:
    """One validator per distinct schema (a built-in tool's, or a run-time one: an MCP server's)."""
    from jsonschema import Draft202012Validator

    parsed = json.loads(schema)
    Draft202012Validator.check_schema(parsed)
    return Draft202012Validator(parsed)


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    return _schema_validator(json.dumps(schema, sort_keys=True))


def args_error(tool: Tool, args: Any) -> str | None:
    """Why ``args`` do not fit the tool's schema, or None."""
    return _first_error(_validator(tool.parameters), args)


def config_error(tool: Tool, config: Any) -> str | None:
    return _first_error(_validator(tool.config_schema), config)
