"""http_fetch against a stub web server over real HTTP: allowlist, address checks, redirects, limits."""

from __future__ import annotations

import ipaddress
from typing import Any

import httpx
import pytest

from tools.builtin.http_fetch import http_fetch
from tools.netguard import address_is_public, host_allowed
from tools.registry import ToolContext, ToolError, ToolTimeout, args_error, get_tool


def ctx(timeout: float = 10, **config: Any) -> ToolContext:
    tool = get_tool("http_fetch")
    assert tool is not None
    return ToolContext(
        tenant_id="t",
        persona_id=None,
        session_id="s",
        request_id="r",
        timeout=timeout,
        config={**tool.default_config, **config},
    )


def fetch(url: str, **kwargs: Any) -> dict[str, Any]:
    return http_fetch({"url": url}, ctx(**kwargs))


def test_fetches_an_allowed_page(web_stub) -> None:
    doc = fetch(f"{web_stub.url}/page", allowed_hosts=["127.0.0.1"], allow_private=True)
    assert doc["status"] == 200 and "hello from the stub page" in doc["text"]
    assert doc["truncated"] is False and doc["content_type"].startswith("text/html")


def test_a_host_off_the_allowlist_is_refused(web_stub) -> None:
    with pytest.raises(ToolError) as info:
        fetch(f"{web_stub.url}/page", allowed_hosts=["example.org"], allow_private=True)
    assert info.value.code == "host_not_allowed"


def test_no_allowlist_means_nothing_is_fetched(web_stub) -> None:
    with pytest.raises(ToolError) as info:
        fetch(f"{web_stub.url}/page")
    assert info.value.code == "host_not_allowed"


def test_loopback_is_refused_unless_private_addresses_are_allowed(web_stub) -> None:
    with pytest.raises(ToolError) as info:
        fetch(f"{web_stub.url}/page", allowed_hosts=["127.0.0.1"])
    assert info.value.code == "address_refused"


def test_the_resolved_address_is_checked_not_just_the_name(web_stub) -> None:
    with pytest.raises(ToolError) as info:
        fetch(f"http://localhost:{web_stub.port}/page", allowed_hosts=["localhost"])
    assert info.value.code == "address_refused"
    assert "127.0.0.1" in info.value.message or "::1" in info.value.message


def test_the_request_goes_to_the_checked_address_with_the_original_host(web_stub) -> None:
    doc = fetch(
        f"http://localhost:{web_stub.port}/page?pin=1", allowed_hosts=["localhost"], allow_private=True
    )
    assert doc["status"] == 200
    seen = httpx.get(f"{web_stub.url}/_requests").json()
    assert any(r["query"].get("pin") == ["1"] and r["host"] == f"localhost:{web_stub.port}" for r in seen)


def test_a_redirect_to_a_disallowed_host_is_not_followed(web_stub) -> None:
    target = f"http://localhost:{web_stub.port}/page?via=redirect-refused"
    with pytest.raises(ToolError) as info:
        fetch(f"{web_stub.url}/redirect?to={target}", allowed_hosts=["127.0.0.1"], allow_private=True)
    assert info.value.code == "host_not_allowed"
    seen = httpx.get(f"{web_stub.url}/_requests").json()
    assert not any(r["query"].get("via") == ["redirect-refused"] for r in seen)


def test_a_redirect_to_an_allowed_host_is_followed(web_stub) -> None:
    doc = fetch(f"{web_stub.url}/redirect?to=/page", allowed_hosts=["127.0.0.1"], allow_private=True)
    assert doc["status"] == 200 and doc["url"].endswith("/page")


def test_redirect_loops_stop(web_stub) -> None:
    loop = f"{web_stub.url}/redirect"
    with pytest.raises(ToolError) as info:
        fetch(loop, allowed_hosts=["127.0.0.1"], allow_private=True, max_redirects=2)
    assert info.value.code == "too_many_redirects"


def test_the_size_limit_truncates(web_stub) -> None:
    doc = fetch(f"{web_stub.url}/big", allowed_hosts=["127.0.0.1"], allow_private=True, max_bytes=1000)
    assert doc["bytes"] == 1000 and len(doc["text"]) == 1000 and doc["truncated"] is True


def test_the_time_limit_holds(web_stub) -> None:
    with pytest.raises(ToolTimeout):
        fetch(f"{web_stub.url}/slow?s=10", timeout=1, allowed_hosts=["127.0.0.1"], allow_private=True)


def test_binary_content_is_not_returned_as_text(web_stub) -> None:
    doc = fetch(f"{web_stub.url}/image", allowed_hosts=["127.0.0.1"], allow_private=True)
    assert doc["text"] is None and "image/png" in doc["note"]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x", "gopher://x"])
def test_other_schemes_are_refused(url: str) -> None:
    tool = get_tool("http_fetch")
    assert tool is not None and args_error(tool, {"url": url}) is not None
    with pytest.raises(ToolError) as info:
        fetch(url, allowed_hosts=["*"])
    assert info.value.code == "url_refused"


def test_credentials_in_urls_are_refused() -> None:
    with pytest.raises(ToolError) as info:
        fetch("http://user:pw@example.org/", allowed_hosts=["*"])
    assert info.value.code == "url_refused"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        # IPv6 transition ranges that carry an IPv4 address a gateway would reach
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254 (cloud metadata)
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8: a public address stays reachable
        ("64:ff9b:1::a00:1", False),  # local-use NAT64
        ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
        ("2002:c0a8:101::1", False),  # 6to4 of 192.168.1.1
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
        ("::7f00:1", False),  # IPv4-compatible (deprecated) 127.0.0.1
        ("::808:808", False),  # IPv4-compatible, even of a public address
        ("2001::1", False),  # Teredo
        ("::ffff:0:7f00:1", False),  # IPv4-translated (SIIT) 127.0.0.1
        ("::ffff:0:a9fe:a9fe", False),  # IPv4-translated 169.254.169.254
        ("::ffff:0:808:808", True),  # IPv4-translated 8.8.8.8
        ("fec0::1", False),  # site-local (deprecated)
    ],
)
def test_address_classification(address: str, public: bool) -> None:
    assert address_is_public(ipaddress.ip_address(address)) is public


def test_host_patterns() -> None:
    assert host_allowed("example.org", ["example.org"])
    assert host_allowed("API.Example.org", ["*.example.org"])
    assert not host_allowed("example.org", ["*.example.org"])
    assert not host_allowed("evilexample.org", ["*.example.org"])
    assert not host_allowed("example.org.evil.com", ["example.org"])
    assert host_allowed("anything.net", ["*"])
    assert not host_allowed("example.org", [])
