"""The web chat's pages in-process: login, the chat page's config and security headers, logout."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from somaagent.models import Membership, Tenant, UISetting

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return get_user_model().objects.create_user(username="ada", password="pw-12345678")


def config_of(html: str) -> dict:
    match = re.search(r'<script id="chat-config" type="application/json">(.*?)</script>', html, re.S)
    assert match, html
    return json.loads(match.group(1))


def test_anonymous_visitors_are_sent_to_the_chat_login():
    r = Client().get("/")
    assert r.status_code == 302 and r["Location"] == "/login/?next=/"
    page = Client().get("/login/")
    assert page.status_code == 200
    assert b'<label for="id_username">' in page.content and b'<label for="id_password">' in page.content
    assert "script-src 'self'" in page["Content-Security-Policy"]


def test_login_lands_on_the_chat_with_its_config(user):
    client = Client()
    r = client.post("/login/", {"username": "ada", "password": "pw-12345678"})
    assert r.status_code == 302 and r["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    config = config_of(page.content.decode())
    assert config["user"] == "ada" and config["tenant"] == "default" and config["sessionId"] is None
    assert config["uploads"]["max_bytes"] == 10 * 1024 * 1024
    # the Collections panel: the documents' limits, and whether the tenant's shared ones are yours to change
    assert config["documents"]["max_bytes"] == 20 * 1024 * 1024 and config["tenantAdmin"] is False
    assert {"pdf", "docx", "md", "html", "txt", "csv"} <= set(config["documents"]["extensions"])
    assert Membership.objects.get(user=user).tenant.name == "default"
    assert "csrftoken" in page.cookies
    csp = page["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "connect-src 'self' ws://testserver wss://testserver" in csp
    assert "frame-ancestors 'none'" in csp
    html = page.content.decode()
    assets = ["markdown-inline.js", "markdown.js", "timeline.js", "view.js", "http.js", "stream.js"]
    chat = ["chat-render.js", "chat-session.js", "chat-send.js", "chat-replies.js", "chat-head.js", "chat.js"]
    panels = ["schedules.js", "docstatus.js", "collection-view.js", "collections.js"]
    for asset in [*assets, "uploads.js", "sidebar.js", *chat, *panels, "chat.css"]:
        assert f"/static/webchat/{asset}" in html
    assert "<script>" not in html  # no inline script: the CSP would block it


def test_wrong_password_shows_an_error(user):
    r = Client().post("/login/", {"username": "ada", "password": "nope"})
    assert r.status_code == 200 and b'role="alert"' in r.content and b'aria-invalid="true"' in r.content


def test_a_session_url_opens_that_session_and_members_chat_in_their_tenant(user):
    tenant = Tenant.objects.create(name="acme")
    Membership.objects.create(user=user, tenant=tenant)
    UISetting.objects.create(
        key="uploads", document={"max_bytes": 1234, "allowed_mime_types": ["text/plain"]}
    )
    client = Client()
    client.force_login(user)
    sid = uuid.uuid4()
    config = config_of(client.get(f"/c/{sid}/").content.decode())
    assert config["sessionId"] == str(sid) and config["tenant"] == "acme"
    assert config["uploads"] == {"max_bytes": 1234, "allowed_mime_types": ["text/plain"]}
    assert client.get("/c/not-a-uuid/").status_code == 404


def test_logout_is_a_post_and_ends_the_session(user):
    client = Client()
    client.force_login(user)
    assert client.get("/logout/").status_code == 405
    r = client.post("/logout/")
    assert r.status_code == 302 and r["Location"] == "/login/"
    assert client.get("/")["Location"].startswith("/login/")


def test_the_favicon_is_served_by_the_app_on_every_page() -> None:
    r = Client().get("/favicon.ico")
    assert r.status_code == 200 and r["Content-Type"] == "image/x-icon"
    assert r.content[:4] == b"\x00\x00\x01\x00", "an ICO file"
    assert b"\x89PNG" in r.content and "max-age" in r["Cache-Control"]
    page = Client().get("/login/").content.decode()
    assert '<link rel="icon" href="/static/webchat/favicon.svg" type="image/svg+xml">' in page
