"""Local (stdio) MCP servers: run only inside the bubblewrap sandbox, contained like the python tool.

The stub server (tests/stubs/mcp_server.py) is copied out of the project into a directory granted
read-only, and runs on the system interpreter with the worker's installed packages bound
read-only. It must not reach the network, nor read the project's files; without bubblewrap it is
refused, never run unconfined.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from somaagent.models import Tenant
from tests.live import StubServer
from tests.tools.conftest import tool_settings
from tests.tools.mcp_support import add_server
from tools.mcp.client import call_tool
from tools.mcp.local import closed_to_others, site_packages
from tools.mcp.offer import mcp_tools_for, tenant_servers
from tools.mcp.spec import Secrets
from tools.registry import ToolContext, ToolError
from tools.sandbox import BWRAP, sandbox, sandbox_reset

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
STUB = ROOT / "tests" / "stubs" / "mcp_server.py"


@pytest.fixture
def bwrap() -> None:
    # The worker's packages are bound for the server; a clone under a private home (CI) must let
    # the sandbox's unprivileged uid pass through on the way to them.
    while (closed := closed_to_others(Path(site_packages()))) is not None:
        closed.chmod(closed.stat().st_mode | 0o001)
    sandbox_reset()
    if sandbox().level != BWRAP:
        message = f"bubblewrap sandbox not available: {sandbox().detail}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def server_dir() -> Iterator[Path]:
    """The stub's code outside the project, in a directory of its own under /tmp that the sandbox's
    unprivileged uid can read (pytest's own tmp_path sits under a directory only root may enter)."""
    where = Path(tempfile.mkdtemp(prefix="soma-mcp-stdio-"))
    try:
        shutil.copy(STUB, where / "server.py")
        where.chmod(0o755)
        (where / "server.py").chmod(0o644)
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)


def tenant() -> Tenant:
    return Tenant.objects.create(name=f"stdio-{time.monotonic_ns()}")


def ctx(t: Tenant, timeout: float = 20.0) -> ToolContext:
    return ToolContext(
        tenant_id=str(t.pk), persona_id=None, session_id="s", request_id="r", timeout=timeout, config={}
    )


def local_server(t: Tenant, server_dir: Path, **fields):
    fields.setdefault("read_only_paths", [str(server_dir)])
    return add_server(
        t,
        transport="stdio",
        command=["/usr/bin/python3", f"{server_dir}/server.py", "--transport", "stdio"],
        python_packages=True,
        timeout_seconds=20.0,
        **fields,
    )


def tools_of(t: Tenant) -> dict:
    return {tool.name: tool for tool in mcp_tools_for(tenant_id=t.pk)}


def test_a_local_server_is_listed_and_called_in_the_sandbox(bwrap, server_dir) -> None:
    t = tenant()
    local_server(t, server_dir, name="local")
    tools = tools_of(t)
    assert "local__add" in tools
    assert tools["local__add"].run({"a": 20, "b": 22}, ctx(t))["text"] == "42"


def test_the_local_server_cannot_read_project_files(bwrap, server_dir) -> None:
    t = tenant()
    local_server(t, server_dir, name="reader")
    read = tools_of(t)["reader__read_file"]
    assert read.run({"path": str(server_dir / "server.py")}, ctx(t))["text"].startswith(
        '"""A small MCP server'
    )
    for secret in (ROOT / "manage.py", ROOT / "var", Path("/etc/passwd"), Path("/root")):
        text = read.run({"path": str(secret)}, ctx(t))["text"]
        assert text.startswith("error: "), (secret, text)


def test_the_local_server_has_no_network_unless_granted(bwrap, server_dir) -> None:
    web = StubServer("tests.stubs.mcp_server")
    try:
        t = tenant()
        local_server(t, server_dir, name="offline")
        result = tools_of(t)["offline__connect"].run({"host": "127.0.0.1", "port": web.port}, ctx(t))
        assert result["text"].startswith("error: ")
        other = tenant()
        local_server(other, server_dir, name="online", allow_network=True)
        result = tools_of(other)["online__connect"].run({"host": "127.0.0.1", "port": web.port}, ctx(other))
        assert result["text"] == "connected"
    finally:
        web.stop()


def test_the_server_gets_its_environment_secrets_but_not_the_workers(bwrap, server_dir) -> None:
    t = tenant()
    local_server(t, server_dir, name="env", secrets=Secrets(env={"SOMA_TEST_TOKEN": "tok-123"}))
    read = tools_of(t)["env__read_file"]
    environ = read.run({"path": "/proc/self/environ"}, ctx(t))["text"]
    assert "SOMA_TEST_TOKEN=tok-123" in environ
    assert "DATABASE_URL" not in environ and "REDIS_URL" not in environ and "DJANGO" not in environ


def test_without_bubblewrap_a_local_server_is_refused_never_run_unconfined(server_dir) -> None:
    t = tenant()
    local_server(t, server_dir, name="refused")
    with tool_settings(sandbox_mode="off"):
        sandbox_reset()
        try:
            assert tools_of(t) == {}
            (spec,) = tenant_servers(tenant_id=t.pk)
            with pytest.raises(ToolError) as info:
                call_tool(spec, tool="add", args={"a": 1, "b": 2}, timeout=10)
            assert info.value.code == "mcp_unavailable"
            assert "needs the bubblewrap sandbox" in info.value.message
        finally:
            sandbox_reset()


def test_a_path_the_sandbox_cannot_reach_is_refused_clearly(bwrap, server_dir) -> None:
    closed = server_dir / "closed"
    closed.mkdir(mode=0o700)
    t = tenant()
    local_server(t, server_dir, name="closed", read_only_paths=[str(server_dir), str(closed)])
    (spec,) = tenant_servers(tenant_id=t.pk)
    with pytest.raises(ToolError) as info:
        call_tool(spec, tool="add", args={"a": 1, "b": 2}, timeout=10)
    assert info.value.code == "mcp_unavailable" and "cannot reach" in info.value.message
