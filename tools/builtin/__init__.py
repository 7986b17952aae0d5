"""The built-in tools, one module each; every module defines its ``TOOL``.

``builtins_register`` puts them in the registry; the tools app calls it in its
``ready()``. A new built-in tool is a module here and a line in ``BUILTIN_TOOLS``.
"""

from __future__ import annotations

from tools.builtin import current_time, document_search, http_fetch, memory_recall, python, web_search
from tools.registry import Tool, register

BUILTIN_TOOLS: tuple[Tool, ...] = (
    current_time.TOOL,
    document_search.TOOL,
    http_fetch.TOOL,
    memory_recall.TOOL,
    python.TOOL,
    web_search.TOOL,
)


def builtins_register() -> None:
    """Register every built-in tool (again, if called again: the registry keeps the last one)."""
    for tool in BUILTIN_TOOLS:
        register(tool)
