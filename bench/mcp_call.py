"""MCP tool call overhead: p50/p99 of one ``add(a, b)`` through each path, against calling it directly.

Run: ``.venv/bin/python -m bench.mcp_call [--runs N]``. Starts the tests' MCP server
(``tests/stubs/mcp_server.py``, the SDK's own server side) on a local port and measures:

- the function itself, called in-process (what the tool does);
- a call as a tool run makes it (``tools.mcp.offer.mcp_call``: circuit breaker in Redis, a fresh
  connection with protocol discovery, the network guard, ``tools/call``, close);
- the same ``tools/call`` on one SDK session kept open (what a pooled connection would cost);
- one bare HTTP POST to the same server, for reference (the floor of any round trip there);
- with bubblewrap present, a local (stdio) server, which SomaAgent starts in the sandbox per call.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from bench.common import Row, Table, bench_environment, machine_description, quiet_client_logs

bench_environment()

import anyio  # noqa: E402
import django  # noqa: E402
import httpx  # noqa: E402

django.setup()
quiet_client_logs()

from mcp import Client  # noqa: E402

from tools.mcp.offer import mcp_call  # noqa: E402
from tools.mcp.spec import Secrets, ServerSpec  # noqa: E402
from tools.registry import ToolContext  # noqa: E402
from tools.sandbox import BWRAP, sandbox  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
STUB = ROOT / "tests" / "stubs" / "mcp_server.py"
ACCEPT = {"Accept": "application/json, text/event-stream"}


def add(a: int, b: int) -> int:  # the stub server's tool, as written there
    return a + b


def spec(**fields: object) -> ServerSpec:
    base: dict[str, object] = {
        "id": uuid.uuid4(),
        "tenant_id": uuid.uuid4(),
        "name": "bench",
        "transport": "streamable_http",
        "url": "",
        "command": (),
        "read_only_paths": (),
        "python_packages": False,
        "allow_network": False,
        "allow_private": True,
        "allowed_tools": ("*",),
        "timeout": 30.0,
        "secrets": Secrets(),
        "version": "1",
    }
    return ServerSpec(**{**base, **fields})  # type: ignore[arg-type]


def timed(fn: Callable[[], object], runs: int, warmup: int = 5) -> list[float]:
    samples = []
    for i in range(runs + warmup):
        started = time.perf_counter()
        fn()
        if i >= warmup:
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def start_stub() -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.stubs.mcp_server", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    assert line.startswith("PORT "), line
    return proc, int(line.split()[1])


def kept_session(url: str, runs: int) -> list[float]:
    samples: list[float] = []

    async def main() -> None:
        async with Client(url) as client:
            for i in range(runs + 5):
                started = time.perf_counter()
                result = await client.call_tool("add", {"a": 2, "b": 40})
                if i >= 5:
                    samples.append((time.perf_counter() - started) * 1000)
                assert result.structured_content == {"result": 42}

    anyio.run(main)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    table = Table(title=f"MCP tool call overhead (`python -m bench.mcp_call --runs {args.runs}`)")
    table.rows.append(Row("add() called directly", timed(lambda: add(2, 40), args.runs)))
    proc, port = start_stub()
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        http = spec(url=url)
        ctx = ToolContext(
            tenant_id=str(http.tenant_id),
            persona_id=None,
            session_id="s",
            request_id="r",
            timeout=30,
            config={},
        )

        def over_http() -> None:
            assert mcp_call(http, "add", {"a": 2, "b": 40}, ctx)["text"] == "42"

        with httpx.Client() as bare:

            def one_post() -> None:
                bare.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=ACCEPT)

            table.rows.append(
                Row("one bare HTTP POST to that server (reference)", timed(one_post, args.runs))
            )
        table.rows.append(
            Row("MCP call as a tool run makes it (streamable HTTP)", timed(over_http, args.runs))
        )
        table.rows.append(Row("tools/call on one kept-open SDK session", kept_session(url, args.runs)))
    finally:
        proc.kill()
        proc.wait()
    if sandbox().level == BWRAP:
        where = Path(tempfile.mkdtemp(prefix="soma-bench-mcp-"))
        try:
            shutil.copy(STUB, where / "server.py")
            os.chmod(where, 0o755)
            local = spec(
                transport="stdio",
                command=("/usr/bin/python3", f"{where}/server.py", "--transport", "stdio"),
                read_only_paths=(str(where),),
                python_packages=True,
                tenant_id=http.tenant_id,
            )

            def over_stdio() -> None:
                assert mcp_call(local, "add", {"a": 2, "b": 40}, ctx)["text"] == "42"

            runs = max(10, args.runs // 10)
            table.rows.append(
                Row("MCP call, local server in the sandbox (stdio)", timed(over_stdio, runs, 2))
            )
        finally:
            shutil.rmtree(where, ignore_errors=True)
    else:
        table.notes.append(f"stdio row skipped: the bubblewrap sandbox is not active ({sandbox().detail})")
    table.notes.append(machine_description())
    print(table.markdown())


if __name__ == "__main__":
    main()
