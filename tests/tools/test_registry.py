"""The registry checks tool schemas when they are first used, not when the process starts."""

from __future__ import annotations

import pytest
from jsonschema.exceptions import SchemaError

from tools.registry import Tool, all_tools, args_error, config_error, schema_errors


def test_every_built_in_tool_has_valid_schemas() -> None:
    tools = all_tools()
    assert tools, "the built-in tools are registered by the tools app"
    for tool in tools:
        schema_errors(tool)  # raises SchemaError for a bad one


def _tool(parameters: dict[str, object]) -> Tool:
    return Tool(name="t", description="d", parameters=parameters, run=lambda args, ctx: {})


def test_arguments_are_checked_against_the_tool_s_schema() -> None:
    tool = _tool({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})
    assert args_error(tool, {"n": 3}) is None
    assert args_error(tool, {"n": "three"}) == "n: 'three' is not of type 'integer'"
    assert config_error(tool, {}) is None


def test_a_tool_with_an_invalid_schema_is_refused_when_first_used() -> None:
    tool = _tool({"type": "no-such-type"})
    with pytest.raises(SchemaError):
        schema_errors(tool)
    with pytest.raises(SchemaError):
        args_error(tool, {})
