"""Bodies over SOMA_MAX_REQUEST_BYTES against the real ASGI server (issue 14 item 3): 413 while the
body is still streaming in, before authentication, whatever the path."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.test import Client

from somaagent.models import Membership
from tests.conftest import make_tenant_key
from tests.live import LiveSystem
from tests.somaagent.conftest import new_user

pytestmark = pytest.mark.integration

LIMIT = 64 * 1024
UPLOAD_LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def web(django_db_setup, django_db_blocker) -> Iterator[LiveSystem]:
    system = LiveSystem(
        env={"SOMA_MAX_REQUEST_BYTES": str(LIMIT), "SOMA_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT)}
    )
    try:
        system.start_web()
        yield system
    finally:
        system.stop()


def _response_head(sock: socket.socket) -> tuple[int, bytes]:
    """The status and everything the server sent until it closed or 5 s of silence."""
    sock.settimeout(5)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        pass
    assert data.startswith(b"HTTP/1.1 "), data[:200]
    return int(data.split(b" ", 2)[1]), data


def _open(web: LiveSystem, path: str, headers: dict[str, str]) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", web.port), timeout=5)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sock.sendall(head.encode())
    return sock


@pytest.mark.parametrize("path", ["/v1/session/message", "/v1/chat/completions", "/v1/auth/token", "/login/"])
def test_an_endless_chunked_body_without_credentials_is_413_before_its_end(
    web: LiveSystem, path: str
) -> None:
    """The body never ends: without the limit the server waits for the rest (no answer at all)."""
    status, data = _endless_body(web, path, {"Content-Type": "application/json"}, fill=b"[", past=LIMIT)
    assert status == 413, data[:300]
    body = json.loads(data.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "payload_too_large"
    assert body["error"]["details"] == {"max_bytes": LIMIT}


def test_a_declared_length_over_the_limit_is_413_before_any_byte_of_the_body(web: LiveSystem) -> None:
    sock = _open(
        web, "/v1/session/message", {"Content-Type": "application/json", "Content-Length": "10000000000"}
    )
    try:
        status, _ = _response_head(sock)
    finally:
        sock.close()
    assert status == 413


def test_bodies_within_the_limit_reach_the_application(web: LiveSystem) -> None:
    """Just under the limit: authentication answers (401), not the limit."""
    body = json.dumps({"message": "x" * (LIMIT - 100)})
    r = httpx.post(
        f"{web.url}/v1/session/message", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 401, r.text[:300]


def _endless_upload(web: LiveSystem, path: str, headers: dict[str, str], *, past: int) -> tuple[int, bytes]:
    """A chunked multipart body sent until ``past`` bytes are just crossed, never ended."""
    return _endless_body(
        web, path, {"Content-Type": "multipart/form-data; boundary=x", **headers}, fill=b"a", past=past
    )


def _endless_body(
    web: LiveSystem, path: str, headers: dict[str, str], *, fill: bytes, past: int
) -> tuple[int, bytes]:
    """A chunked body of ``fill`` bytes sent until ``past`` bytes are just crossed, never ended
    (no final empty chunk). Not more: a server closing with unread bytes resets the
    connection, which can drop its answer."""
    sock = _open(web, path, {"Transfer-Encoding": "chunked", **headers})
    try:
        chunk = fill * 8192
        sent = 0
        while sent <= past:
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        return _response_head(sock)
    finally:
        sock.close()


UPLOAD_PATHS = [
    "/v1/attachments",
    "/v1/import",
    "/v1/collections/7f1e3c52-0b6a-4d1e-9a57-2c4f8e9d3b10/documents",
]


@pytest.mark.parametrize("path", UPLOAD_PATHS)
@pytest.mark.parametrize("credentials", ["none", "bogus key", "bogus cookie"])
def test_the_upload_limit_is_only_for_callers_whose_credentials_check_out(
    web: LiveSystem, path: str, credentials: str
) -> None:
    """Issue 14 item 3 on the upload paths: without credentials that check out, an endless body is
    413 at SOMA_MAX_REQUEST_BYTES, not read (and spooled to disk) up to the uploads' limit."""
    headers = {
        "none": {},
        "bogus key": {"Authorization": "Bearer soma_000000000000_" + "a" * 43},
        "bogus cookie": {"Cookie": "sessionid=nosuchsession"},
    }[credentials]
    status, data = _endless_upload(web, path, headers, past=LIMIT)
    assert status == 413, data[:300]
    assert json.loads(data.split(b"\r\n\r\n", 1)[1])["error"]["details"] == {"max_bytes": LIMIT}
    sock = _open(
        web, path, {"Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(LIMIT * 2)}
    )
    try:
        status, _ = _response_head(sock)  # a declared length: 413 before a byte of the body
    finally:
        sock.close()
    assert status == 413


def test_uploads_have_their_own_larger_limit(web: LiveSystem, live_db: None) -> None:
    key = make_tenant_key().key
    files = {"file": ("a.txt", b"a" * (LIMIT * 2), "text/plain")}
    assert httpx.post(f"{web.url}/v1/attachments", files=files).status_code == 413  # anonymous
    r = httpx.post(f"{web.url}/v1/attachments", files=files, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 201, r.text[:300]
    files = {"file": ("a.txt", b"a" * (UPLOAD_LIMIT + 128 * 1024), "text/plain")}
    try:
        r = httpx.post(f"{web.url}/v1/attachments", files=files, headers={"Authorization": f"Bearer {key}"})
    except httpx.HTTPError:  # the server may close while the client is still writing
        return
    assert r.status_code == 413


def test_a_logged_in_web_chat_user_gets_the_upload_limit(web: LiveSystem, live_db: None) -> None:
    """The web chat uploads with its login cookie (and CSRF token), no key: the larger limit too."""
    tenant: Any = make_tenant_key().tenant
    user = new_user()
    Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.MEMBER)
    browser = Client()
    browser.force_login(user)
    csrf = "c" * 32
    cookies = {"sessionid": browser.cookies["sessionid"].value, "csrftoken": csrf}
    files = {"file": ("a.txt", b"a" * (LIMIT * 2), "text/plain")}
    with httpx.Client(base_url=web.url, cookies=cookies) as c:
        r = c.post("/v1/attachments", files=files, headers={"X-CSRFToken": csrf})
    assert r.status_code == 201, r.text[:300]
