"""Each server's tool list, cached in Redis for every worker of the deployment.

``mcp:tools:<server>:<version>`` holds the list for ``SOMA_MCP_TOOLS_TTL_SECONDS`` (the version
changes with every edit of the entry, so an edit is seen at once); a ``list_changed`` from the
server deletes it (``tools_invalidate``), and the next turn lists again. The last good list is
kept a day longer: when the server cannot be listed, its last known tools are still offered (a
call then fails with a clear tool error and counts against the circuit breaker) and the listing
is retried after ``RETRY_SECONDS``, so a down server does not slow every turn down. Without Redis
the list is asked for directly (derived state only: nothing is lost); without Redis a down server
is not remembered either, so each turn waits for its listing timeout.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis
from django.conf import settings

from somaagent.db_hold import db_release
from somaagent.process_local import PerProcess
from somaagent.redis_client import key, sync_redis
from tools.breaker import breaker_record
from tools.mcp.client import list_tools
from tools.mcp.spec import ServerSpec
from tools.registry import ToolError

log = logging.getLogger(__name__)
RETRY_SECONDS = 30
LAST_GOOD_SECONDS = 86_400
# Listings of several servers run side by side (network waits only: no database work there).
_listers = PerProcess(lambda: ThreadPoolExecutor(max_workers=8, thread_name_prefix="mcp-list"))


def _fresh_key(spec: ServerSpec) -> str:
    return key("mcp", "tools", spec.id, spec.version)


def _last_key(spec: ServerSpec) -> str:
    return key("mcp", "tools", spec.id, spec.version, "last")


def server_breaker(spec: ServerSpec) -> str:
    """The circuit breaker name of the server itself (its tools each have their own too)."""
    return f"mcp:{spec.id}"


def _read(name: str) -> list[dict[str, Any]] | None:
    raw = sync_redis().get(name)
    return None if raw is None else list(json.loads(raw))


def servers_tools(specs: list[ServerSpec]) -> list[list[dict[str, Any]]]:
    """Each server's tools, from the cache or (when stale) from the servers themselves, listed
    side by side so that a turn waits for the slowest server, not for the sum of them."""
    lists: list[list[dict[str, Any]] | None] = []
    for spec in specs:
        try:
            lists.append(_read(_fresh_key(spec)))
        except redis.RedisError:
            log.warning("MCP tool cache unreadable; listing directly", extra={"mcp_server": spec.name})
            lists.append(None)
    stale = [spec for spec, tools in zip(specs, lists, strict=True) if tools is None]
    if not stale:
        return [tools or [] for tools in lists]
    db_release()  # the listing may wait seconds: hold no pooled connection meanwhile
    fetched = iter(_listers.get().map(_fetch, stale) if len(stale) > 1 else map(_fetch, stale))
    return [tools if tools is not None else next(fetched) for tools in lists]


def _fetch(spec: ServerSpec) -> list[dict[str, Any]]:
    timeout = min(spec.timeout, settings.SOMA.tools.mcp_list_timeout_seconds)
    try:
        outcome = list_tools(spec, timeout=timeout)
    except ToolError as exc:
        breaker_record(tool=server_breaker(spec), tenant_id=spec.tenant_id, ok=False)
        return _keep_last(spec, exc)
    tools: list[dict[str, Any]] = outcome.value
    breaker_record(tool=server_breaker(spec), tenant_id=spec.tenant_id, ok=True)
    try:
        document = json.dumps(tools)
        pipe = sync_redis().pipeline()
        pipe.set(_fresh_key(spec), document, ex=max(1, int(settings.SOMA.tools.mcp_tools_ttl_seconds)))
        pipe.set(_last_key(spec), document, ex=LAST_GOOD_SECONDS)
        pipe.execute()
    except redis.RedisError:
        log.warning("could not cache an MCP tool list", extra={"mcp_server": spec.name})
    return tools


def _keep_last(spec: ServerSpec, error: ToolError) -> list[dict[str, Any]]:
    """Offer the last known tools for a while; their calls will report the outage."""
    try:
        last = _read(_last_key(spec)) or []
        sync_redis().set(_fresh_key(spec), json.dumps(last), ex=RETRY_SECONDS)
    except redis.RedisError:
        last = []
    log.warning(
        "MCP server could not be listed; offering its last known tools",
        extra={"mcp_server": spec.name, "error": error.message, "tools": len(last)},
    )
    return last


def tools_invalidate(spec: ServerSpec) -> None:
    """The server said its tools changed: list it again on the next turn."""
    try:
        sync_redis().delete(_fresh_key(spec))
    except redis.RedisError:
        log.warning("could not drop a changed MCP tool list", extra={"mcp_server": spec.name})
