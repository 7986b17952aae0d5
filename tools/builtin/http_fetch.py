"""``http_fetch``: GET a URL whose host staff allowed, with size, time and address limits.

Configured per tenant or persona in admin (tool settings ``config``):
``allowed_hosts`` (names, ``*.example.com``, or ``*``), ``allow_private``
(default false: loopback, private, link-local and reserved addresses are
refused, judged on the resolved address), ``max_bytes`` and
``max_redirects``. Redirects are followed by hand, each hop checked again.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urljoin

import httpx

from somaagent.process_local import PerProcess
from tools.netguard import Refused, host_allowed, resolve_checked
from tools.registry import Tool, ToolContext, ToolError, ToolTimeout

TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml", "application/javascript")
_client = PerProcess(lambda: httpx.Client(trust_env=False, follow_redirects=False, timeout=10.0))


def _http() -> httpx.Client:
    """No proxies (the checked address must be the one connected to), no automatic redirects."""
    return _client.get()


def _request_for(url: str, config: dict[str, Any]) -> httpx.Request:
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https"):
        raise ToolError("Only http and https URLs can be fetched.", code="url_refused")
    if parsed.userinfo:
        raise ToolError("URLs with credentials are refused.", code="url_refused")
    host = parsed.host
    if not host or not host_allowed(host, list(config.get("allowed_hosts") or [])):
        raise ToolError(f"The host {host!r} is not on this tool's allowlist.", code="host_not_allowed")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        target = resolve_checked(host, port, allow_private=bool(config.get("allow_private")))
    except Refused as exc:
        raise ToolError(str(exc), code="address_refused") from exc
    pinned = parsed.copy_with(host=target.address)
    host_header = host if parsed.port is None else f"{host}:{parsed.port}"
    extensions = {"sni_hostname": host} if parsed.scheme == "https" else {}
    return httpx.Request(
        "GET",
        pinned,
        headers={"Host": host_header, "User-Agent": "SomaAgent-http_fetch/1", "Accept": "*/*"},
        extensions=extensions,
    )


def http_fetch(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    config = ctx.config
    max_bytes = int(config.get("max_bytes") or 262_144)
    deadline = time.monotonic() + ctx.timeout
    url = args["url"]
    for _ in range(int(config.get("max_redirects", 3)) + 1):
        request = _request_for(url, config)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ToolTimeout(f"Fetching took longer than {ctx.timeout:g} s.")
        request.extensions["timeout"] = httpx.Timeout(remaining).as_dict()
        try:
            response = _http().send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise ToolTimeout(f"Fetching took longer than {ctx.timeout:g} s.") from exc
        except httpx.HTTPError as exc:
            raise ToolError(f"Could not fetch {url}: {exc.__class__.__name__}.", code="fetch_failed") from exc
        try:
            if response.is_redirect and "location" in response.headers:
                url = urljoin(url, response.headers["location"])
                continue
            return _read(response, url=url, max_bytes=max_bytes, deadline=deadline, timeout=ctx.timeout)
        finally:
            response.close()
    raise ToolError("Too many redirects.", code="too_many_redirects")


def _read(
    response: httpx.Response, *, url: str, max_bytes: int, deadline: float, timeout: float
) -> dict[str, Any]:
    kept = bytearray()
    truncated = False
    try:
        for chunk in response.iter_bytes():
            if time.monotonic() > deadline:
                raise ToolTimeout(f"Fetching took longer than {timeout:g} s.")
            room = max_bytes - len(kept)
            kept += chunk[:room]
            if len(chunk) > room:
                truncated = True
                break
    except httpx.TimeoutException as exc:
        raise ToolTimeout(f"Fetching took longer than {timeout:g} s.") from exc
    except httpx.HTTPError as exc:
        raise ToolError(f"The download broke off: {exc.__class__.__name__}.", code="fetch_failed") from exc
    content_type = response.headers.get("content-type", "")
    doc: dict[str, Any] = {
        "url": url,
        "status": response.status_code,
        "content_type": content_type,
        "bytes": len(kept),
        "truncated": truncated,
    }
    if content_type.lower().startswith(TEXT_TYPES) or not content_type:
        doc["text"] = bytes(kept).decode(response.encoding or "utf-8", errors="replace")
    else:
        doc["text"] = None
        doc["note"] = f"binary content ({content_type}) is not shown"
    return doc


TOOL = Tool(
    name="http_fetch",
    description="Fetch a web page or API response by URL (GET). Only hosts the operator allowed.",
    parameters={
        "type": "object",
        "properties": {"url": {"type": "string", "minLength": 1, "maxLength": 2000, "pattern": "^https?://"}},
        "required": ["url"],
        "additionalProperties": False,
    },
    run=http_fetch,
    config_schema={
        "type": "object",
        "properties": {
            "allowed_hosts": {"type": "array", "items": {"type": "string", "minLength": 1}},
            "allow_private": {"type": "boolean"},
            "max_bytes": {"type": "integer", "minimum": 1, "maximum": 5_000_000},
            "max_redirects": {"type": "integer", "minimum": 0, "maximum": 10},
        },
        "additionalProperties": False,
    },
    default_config={
        "allowed_hosts": [],
        "allow_private": False,
        "max_bytes": 262_144,
        "max_redirects": 3,
    },
    default_enabled=False,
    default_timeout=20.0,
)
