"""``tools/list`` and ``tools/call`` against one server, from a worker thread (blocking calls).

Each operation opens its own connection (handshake or 2026 discovery), does its work under one
deadline and closes it: a server restart never leaves a stale session behind, and nothing holds
a connection between turns. Any failure becomes a ``ToolError`` the model can read: the server is
unreachable (``mcp_unavailable``), too slow (``timeout``), or the tool itself failed
(``mcp_tool_error``). A ``list_changed`` notification seen on the way is reported to the caller.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from tools.mcp.connect import client_for
from tools.mcp.local import LocalServerRefused
from tools.mcp.spec import ServerSpec
from tools.netguard import Refused
from tools.registry import ToolError, ToolTimeout

log = logging.getLogger(__name__)
MAX_PAGES = 20
NOTIFICATION_GRACE_SECONDS = 0.1  # handshake-era (SSE) calls only; 20 ms missed it under load in CI
RESULT_MAX_CHARS = 200_000  # a server's answer is kept whole up to this (the model sees less)


class McpUnavailable(ToolError):
    """The server could not be reached or did not speak MCP: a failure of the server, not the tool."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="mcp_unavailable")


@dataclass
class Outcome:
    value: Any = None
    list_changed: bool = False
    is_error: bool = False  # a tools/call result flagged isError: the tool failed, the server did not


def _cause(exc: BaseException) -> str:
    """A short, secret-free description of what went wrong (no URLs, headers or arguments)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, MCPError):
        return f"{exc.__class__.__name__} {exc.code}"
    if isinstance(exc, LocalServerRefused | Refused):
        return str(exc)
    return exc.__class__.__name__


def _run(spec: ServerSpec, timeout: float, work: Any, *, what: str) -> Outcome:
    outcome = Outcome()

    async def handler(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            outcome.list_changed = True

    async def main() -> None:
        with anyio.fail_after(timeout):
            async with client_for(spec, timeout=timeout, message_handler=handler) as client:
                outcome.value = await work(client)
                if client.protocol_version not in MODERN_PROTOCOL_VERSIONS:
                    # A handshake-era server may announce list_changed on this session just
                    # before its answer; the SDK hands notifications over in tasks of their own.
                    await anyio.sleep(NOTIFICATION_GRACE_SECONDS)

    try:
        anyio.run(main)
    except TimeoutError as exc:
        raise ToolTimeout(
            f"The MCP server {spec.name!r} did not answer {what} within {timeout:g} s."
        ) from exc
    except ToolError:
        raise
    except Exception as exc:  # transport, protocol and sandbox failures all end here, named
        cause = _cause(exc)
        if cause == "TimeoutError":
            raise ToolTimeout(
                f"The MCP server {spec.name!r} did not answer {what} within {timeout:g} s."
            ) from exc
        log.warning(
            "MCP server unavailable",
            extra={"mcp_server": spec.name, "what": what, "cause": cause},
            exc_info=True,
        )
        raise McpUnavailable(f"The MCP server {spec.name!r} is unavailable ({cause}).") from exc
    return outcome


async def _all_tools(client: Any) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = await client.list_tools(cursor=cursor)
        for tool in page.tools:
            tools.append(
                {"name": tool.name, "description": tool.description or "", "input_schema": tool.input_schema}
            )
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def list_tools(spec: ServerSpec, *, timeout: float) -> Outcome:
    """Every tool the server lists (all pages), as ``{name, description, input_schema}``."""
    return _run(spec, timeout, _all_tools, what="tools/list")


def result_document(result: types.CallToolResult) -> dict[str, Any]:
    """What is kept of a tool's result (``tool_runs.result``, the stream, the model): its text and
    structured content up to ``RESULT_MAX_CHARS`` each, the types of other parts (images…)."""
    texts = [part.text for part in result.content if isinstance(part, types.TextContent)]
    text = "\n".join(texts)
    doc: dict[str, Any] = {"text": text[:RESULT_MAX_CHARS]}
    if len(text) > RESULT_MAX_CHARS:
        doc["text_truncated"] = len(text)
    if result.structured_content is not None:
        if len(json.dumps(result.structured_content, default=str)) <= RESULT_MAX_CHARS:
            doc["structured"] = result.structured_content
        else:
            doc["structured_dropped"] = "larger than the result limit; see text"
    others = [part.type for part in result.content if not isinstance(part, types.TextContent)]
    if others:
        doc["other_content"] = others
    return doc


def call_tool(spec: ServerSpec, *, tool: str, args: dict[str, Any], timeout: float) -> Outcome:
    """Call ``tool``; ``value`` is the result document, ``is_error`` set when the tool failed."""

    async def work(client: Any) -> types.CallToolResult:
        return await client.call_tool(tool, args)

    outcome = _run(spec, timeout, work, what=f"{tool} (tools/call)")
    result: types.CallToolResult = outcome.value
    outcome.value = result_document(result)
    outcome.is_error = bool(result.is_error)
    return outcome
