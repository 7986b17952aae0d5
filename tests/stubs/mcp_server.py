"""A small MCP server written with the ``mcp`` SDK's server side, for the MCP tool-source tests.

Run as ``python -m tests.stubs.mcp_server --port 0 [--transport streamable-http|sse]`` it serves
over HTTP and prints ``PORT <n>`` once bound (``tests.live.StubServer`` reads it); run as
``python mcp_server.py --transport stdio`` it speaks MCP over stdin/stdout. The stdio tests copy
this file out of the project and run it inside the sandbox, so it imports nothing from the project.

Tools: ``add``, ``echo``, ``big``, ``fail`` (a tool error), ``slow`` (sleeps), ``whoami`` (the request's
Authorization and X-Tenant-Secret headers: proves which credentials arrived), ``grow`` (adds a
tool and announces ``list_changed``), ``read_file`` and ``connect`` (what the sandbox lets through),
``weird.name`` (not a valid function name once namespaced: never offered).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import time
from typing import Any

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings

server = MCPServer("soma-stub")


@server.tool(description="Add two integers.")
def add(a: int, b: int) -> int:
    return a + b


@server.tool(description="Echo the text back.")
def echo(text: str) -> str:
    return text


@server.tool(description="Answer with `size` characters.")
def big(size: int) -> str:
    return "x" * size


@server.tool(description="Always fails with the given message.")
def fail(message: str) -> str:
    raise ValueError(message)


@server.tool(description="Sleep, then answer.")
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@server.tool(description="The credentials this request carried.")
def whoami(ctx: Context) -> dict[str, Any]:
    request = ctx.request_context.request
    headers = getattr(request, "headers", None) or {}
    return {
        "authorization": headers.get("authorization"),
        "x_tenant_secret": headers.get("x-tenant-secret"),
    }


@server.tool(description="Add a tool named after the argument and announce the change.")
async def grow(name: str, ctx: Context) -> str:
    def grown() -> str:
        return f"I am {name}"

    server.add_tool(grown, name=name, description=f"A tool added at run time: {name}.")
    await ctx.notify_tools_changed()
    try:
        await ctx.request_context.session.send_tool_list_changed()
    except Exception:
        pass
    return f"added {name}"


@server.tool(description="Read a file and return its first bytes, or the error.")
def read_file(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(200).decode("utf-8", errors="replace")
    except OSError as exc:
        return f"error: {exc.__class__.__name__}: {exc.strerror}"


@server.tool(description="Try a TCP connection; returns 'connected' or the error.")
def connect(host: str, port: int) -> str:
    try:
        with socket.create_connection((host, port), timeout=3):
            return "connected"
    except OSError as exc:
        return f"error: {exc.__class__.__name__}: {exc.strerror or exc}"


@server.tool(name="weird.name", description="A name with a dot.")
def weird() -> str:
    return "weird"


def _app(transport: str) -> Any:
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    if transport == "sse":
        return server.sse_app(transport_security=security)
    return server.streamable_http_app(transport_security=security)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--transport", default="streamable-http", choices=["streamable-http", "sse", "stdio"])
    args = parser.parse_args()
    if args.transport == "stdio":
        server.run("stdio")
        return
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(_app(args.transport), log_level="warning", access_log=False, lifespan="on")
    started = time.monotonic()
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))
    print(f"stopped after {time.monotonic() - started:.1f}s", flush=True)


if __name__ == "__main__":
    main()
