"""Staff add MCP servers in admin or with ``manage.py add_mcp_server``; secrets are write-only,
encrypted at rest, sent only to the entry's own server and never to another tenant's."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from somaagent.models import AuditLog, Tenant
from tests.live import StubServer
from tests.tools.mcp_support import add_server
from tools.mcp.offer import mcp_tools_for
from tools.mcp.spec import Secrets
from tools.models import McpServer
from tools.registry import ToolContext

PROJECT = str(Path(__file__).resolve().parents[2])  # the checkout under test

pytestmark = pytest.mark.django_db
TOKEN = "tok-very-secret-4711"


@pytest.fixture(scope="module")
def mcp_stub() -> Iterator[StubServer]:
    server = StubServer("tests.stubs.mcp_server")
    yield server
    server.stop()


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_superuser("staff", "s@example.org", "pw-long-enough")
    client.force_login(user)
    return client


def tenant() -> Tenant:
    return Tenant.objects.create(name=f"adm-{time.monotonic_ns()}")


def ctx(t: Tenant) -> ToolContext:
    return ToolContext(
        tenant_id=str(t.pk), persona_id=None, session_id="s", request_id="r", timeout=5, config={}
    )


def whoami(t: Tenant, server: str) -> dict:
    tools = {tool.name: tool for tool in mcp_tools_for(tenant_id=t.pk)}
    return tools[f"{server}__whoami"].run({}, ctx(t))["structured"]


def form(**fields: str) -> dict[str, str]:
    return {
        "name": "github",
        "transport": "streamable_http",
        "url": "",
        "command": "[]",
        "read_only_paths": "[]",
        "allowed_tools": '["*"]',
        "timeout_seconds": "5",
        "enabled": "on",
        "allow_private": "on",
        **fields,
    }


def test_staff_add_a_server_with_a_token_that_is_encrypted_and_never_shown(staff, mcp_stub) -> None:
    t = tenant()
    response = staff.post(
        "/admin/tools/mcpserver/add/",
        form(
            tenant=str(t.pk),
            url=f"{mcp_stub.url}/mcp",
            bearer_token=TOKEN,
            headers='{"X-Tenant-Secret": "hdr-1"}',
        ),
    )
    assert response.status_code == 302, response.content[:3000]
    server = McpServer.objects.get(tenant=t)
    assert TOKEN not in server.secret_encrypted and server.secret_encrypted.startswith("gAAAA")
    page = staff.get(f"/admin/tools/mcpserver/{server.pk}/change/").content.decode()
    assert TOKEN not in page and "hdr-1" not in page and server.secret_encrypted not in page
    assert whoami(t, "github") == {"authorization": f"Bearer {TOKEN}", "x_tenant_secret": "hdr-1"}
    entry = AuditLog.objects.get(target="mcp_server:github", tenant=t)
    assert TOKEN not in json.dumps(entry.details) and entry.details["header_names"] == [
        "Authorization",
        "X-Tenant-Secret",
    ]

    # Saving again without secrets keeps them; clearing removes them.
    response = staff.post(
        f"/admin/tools/mcpserver/{server.pk}/change/", form(tenant=str(t.pk), url=f"{mcp_stub.url}/mcp")
    )
    assert response.status_code == 302
    assert whoami(t, "github")["authorization"] == f"Bearer {TOKEN}"
    staff.post(
        f"/admin/tools/mcpserver/{server.pk}/change/",
        form(tenant=str(t.pk), url=f"{mcp_stub.url}/mcp", clear_secrets="on"),
    )
    assert McpServer.objects.get(pk=server.pk).secret_encrypted == ""


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "Bad Name"}, "lower-case letters"),
        ({"name": "a__b"}, "lower-case letters"),
        ({"url": "ftp://x"}, "Enter a valid URL"),
        ({"url": "http://user:pw@mcp.example.org/mcp"}, "not in the URL"),
        ({"headers": "[1]"}, "JSON object"),
        ({"allowed_tools": '"add"'}, "JSON list"),
        ({"transport": "stdio", "url": "", "command": '["python3"]'}, "absolute path"),
        (
            {
                "transport": "stdio",
                "url": "",
                "command": '["/usr/bin/python3"]',
                "read_only_paths": json.dumps([PROJECT]),  # wherever this checkout is
            },
            "project",
        ),
    ],
)
def test_bad_entries_are_refused_with_a_clear_error(staff, fields, message) -> None:
    t = tenant()
    response = staff.post(
        "/admin/tools/mcpserver/add/",
        form(**{"tenant": str(t.pk), "url": "http://mcp.example.org/mcp", **fields}),
    )
    assert response.status_code == 200 and message in response.content.decode()
    assert not McpServer.objects.filter(tenant=t).exists()


def test_credentials_go_only_to_their_own_tenants_server(mcp_stub) -> None:
    mine, theirs = tenant(), tenant()
    add_server(
        mine, name="svc", url=f"{mcp_stub.url}/mcp", secrets=Secrets(headers={"Authorization": "Bearer mine"})
    )
    add_server(theirs, name="svc", url=f"{mcp_stub.url}/mcp")
    assert whoami(mine, "svc")["authorization"] == "Bearer mine"
    assert whoami(theirs, "svc")["authorization"] is None


def test_the_command_adds_a_server_reading_the_token_from_the_environment(mcp_stub, monkeypatch) -> None:
    t = tenant()
    monkeypatch.setenv("GITHUB_MCP_TOKEN", TOKEN)
    out = io.StringIO()
    call_command(
        "add_mcp_server",
        "--tenant", t.name, "--name", "gh", "--url", f"{mcp_stub.url}/mcp", "--allow-private",
        "--tools", "whoami,add", "--bearer-token-env", "GITHUB_MCP_TOKEN", "--timeout", "5",
        stdout=out,
    )  # fmt: skip
    assert "tools offered: whoami, add" in out.getvalue() and TOKEN not in out.getvalue()
    assert sorted(t.name for t in mcp_tools_for(tenant_id=t.pk)) == ["gh__add", "gh__whoami"]
    assert whoami(t, "gh")["authorization"] == f"Bearer {TOKEN}"
    with pytest.raises(CommandError, match="lower-case letters"):
        call_command("add_mcp_server", "--tenant", t.name, "--name", "No", "--url", "http://x.example/mcp")
    with pytest.raises(CommandError, match="no tenant"):
        call_command(
            "add_mcp_server", "--tenant", "nobody-here", "--name", "x", "--url", "http://x.example/mcp"
        )
