"""Attachment upload and download: limits from UI settings, MIME, sha256, quarantine, tenancy."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from conversations.models import Attachment, SessionEvent
from conversations.services.accept import MessageInput, message_accept
from somaagent.models import UISetting
from tests.conftest import make_tenant_key

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40


def client_for(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def upload(client: APIClient, name: str, content: bytes, mime: str = "text/plain", **fields: str):
    return client.post(
        "/v1/attachments", {"file": SimpleUploadedFile(name, content, content_type=mime), **fields}
    )


@pytest.fixture
def tk():
    return make_tenant_key()


def test_upload_stores_the_file_with_its_sha256_and_serves_it_back(tk):
    client = client_for(tk.key)
    content = "# Notes\nhéllo\n".encode()
    r = upload(client, "notes.md", content, "text/markdown")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["filename"] == "notes.md" and body["mime"] == "text/markdown"
    assert body["size"] == len(content) and body["sha256"] == hashlib.sha256(content).hexdigest()
    assert body["status"] == "clean" and body["session_id"] is None
    aid = body["attachment_id"]
    assert client.get(f"/v1/attachments/{aid}").json() == body
    for url in (f"/v1/attachments/{aid}/content", f"/v1/attachments/{aid}?download=1"):
        got = client.get(url)
        assert got.status_code == 200 and got.content == content
        assert got["Content-Type"] == "text/markdown"
        assert got["X-Content-Type-Options"] == "nosniff"
        assert got["Content-Disposition"] == 'attachment; filename="notes.md"'
        assert "sandbox" in got["Content-Security-Policy"]


def test_hostile_file_names_are_cleaned_and_quoted_safely(tk):
    client = client_for(tk.key)
    r = upload(client, '../../etc/"evil"\r\nX-Injected: 1;.txt', b"plain", "text/plain")
    assert r.status_code == 201, r.content
    name = r.json()["filename"]
    assert "/" not in name and '"' not in name and "\r" not in name and "\n" not in name
    got = client.get(f"/v1/attachments/{r.json()['attachment_id']}/content")
    assert "\n" not in got["Content-Disposition"] and "X-Injected" not in dict(got.headers)
    r = upload(client, "résumé ünïcode.txt", b"plain", "text/plain")
    got = client.get(f"/v1/attachments/{r.json()['attachment_id']}/content")
    assert "filename*=utf-8''r%C3%A9sum%C3%A9%20%C3%BCn%C3%AFcode.txt" in got["Content-Disposition"]


def test_size_limit_comes_from_ui_settings_and_rejects_without_writing(tk):
    UISetting.objects.create(key="uploads", document={"max_bytes": 16})
    client = client_for(tk.key)
    r = upload(client, "big.txt", b"x" * 17)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert r.json()["error"]["details"]["max_bytes"] == 16
    assert upload(client, "ok.txt", b"x" * 16).status_code == 201
    assert Attachment.objects.count() == 1


def test_body_far_over_the_limit_is_refused_before_parsing(tk):
    UISetting.objects.create(key="uploads", document={"max_bytes": 16})
    r = upload(client_for(tk.key), "huge.txt", b"x" * 200_000)
    assert r.status_code == 413
    assert r.json()["error"]["details"]["size"] > 200_000  # the Content-Length, not the file
    assert not Attachment.objects.exists()


def test_mime_not_allowed_is_415_without_writing(tk):
    client = client_for(tk.key)
    r = upload(client, "page.html", b"<script>alert(1)</script>", "text/html")
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    assert "text/plain" in r.json()["error"]["details"]["allowed"]
    r = upload(client, "tool.exe", b"MZ\x90\x00", "application/octet-stream")  # guessed from the name
    assert r.status_code == 415 and r.json()["error"]["details"]["mime"] != "application/octet-stream"
    assert not Attachment.objects.exists()


def test_allowed_types_from_ui_settings_accept_wildcards(tk):
    UISetting.objects.create(key="uploads", document={"allowed_mime_types": ["image/*"]})
    client = client_for(tk.key)
    assert upload(client, "a.png", PNG, "image/png").status_code == 201
    assert upload(client, "a.txt", b"text").status_code == 415


def test_invalid_ui_setting_falls_back_to_defaults(tk):
    UISetting.objects.create(key="uploads", document={"max_bytes": "lots", "allowed_mime_types": "all"})
    assert upload(client_for(tk.key), "a.txt", b"text").status_code == 201


@pytest.mark.parametrize(
    "name,content,mime",
    [
        ("photo.png", b"just some text", "image/png"),  # declared type and content disagree
        ("doc.pdf", PNG, "application/pdf"),
        ("data.json", b"\x00\x01\x02\xff", "application/json"),  # not text
        ("notes.txt", b"\x7fELF\x02\x01\x01", "text/plain"),  # an executable, whatever it says
        ("run.txt", b"#!/bin/sh\nrm -rf /\n", "text/plain"),  # a script
        ("setup.sh", b"echo hi\n", "text/plain"),  # executable extension
    ],
)
def test_suspicious_uploads_are_quarantined_and_cannot_be_used(tk, name, content, mime):
    client = client_for(tk.key)
    r = upload(client, name, content, mime)
    assert r.status_code == 201, r.content
    assert r.json()["status"] == "quarantined" and r.json()["quarantine_reason"]
    aid = r.json()["attachment_id"]
    got = client.get(f"/v1/attachments/{aid}/content")
    assert got.status_code == 403 and got.json()["error"]["code"] == "attachment_quarantined"
    sent = client.post("/v1/session/message", {"message": "see file", "attachments": [aid]}, format="json")
    assert sent.status_code == 400
    assert not SessionEvent.objects.filter(payload__message="see file").exists()


def test_matching_content_is_clean(tk):
    client = client_for(tk.key)
    assert upload(client, "a.png", PNG, "image/png").json()["status"] == "clean"
    assert upload(client, "a.json", b'{"a": 1}', "application/json").json()["status"] == "clean"


def test_other_tenants_attachments_are_404_everywhere(tk):
    other = make_tenant_key()
    aid = upload(client_for(other.key), "theirs.txt", b"secret").json()["attachment_id"]
    client = client_for(tk.key)
    for url in (
        f"/v1/attachments/{aid}",
        f"/v1/attachments/{aid}/content",
        f"/v1/attachments/{aid}?download=1",
    ):
        r = client.get(url)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", url
    assert client.get("/v1/attachments/not-a-uuid").status_code == 404
    sent = client.post("/v1/session/message", {"message": "x", "attachments": [aid]}, format="json")
    assert sent.status_code == 404


def test_upload_into_a_session_and_send_it(tk):
    client = client_for(tk.key)
    sid = message_accept(tenant=tk.tenant, data=MessageInput(message="hi"))["session_id"]
    r = upload(client, "a.txt", b"text", session_id=sid)
    assert r.status_code == 201 and r.json()["session_id"] == sid
    aid = r.json()["attachment_id"]
    sent = client.post(
        "/v1/session/message",
        {"message": "with file", "session_id": sid, "attachments": [aid]},
        format="json",
    )
    assert sent.status_code == 202
    event = SessionEvent.objects.get(event_id=sent.json()["event_id"])
    assert event.payload["attachments"] == [{"id": aid, "filename": "a.txt", "mime": "text/plain", "size": 4}]


def test_upload_into_another_tenants_session_is_404_without_writing(tk):
    theirs = message_accept(tenant=make_tenant_key().tenant, data=MessageInput(message="hi"))["session_id"]
    for session_id in (theirs, str(uuid.uuid4()), "garbage"):
        r = upload(client_for(tk.key), "a.txt", b"text", session_id=session_id)
        assert r.status_code == 404, session_id
    assert not Attachment.objects.exists()


def test_bad_requests_are_clear_4xx_without_writing(tk):
    client = client_for(tk.key)
    r = client.post("/v1/attachments", {"nofile": "x"})
    assert r.status_code == 400 and "nofile" in r.json()["error"]["details"]
    r = client.post("/v1/attachments", {})
    assert r.status_code == 400 and r.json()["error"]["details"] == {"file": "required"}
    r = client.post("/v1/attachments", {"file": "x"}, format="json")
    assert r.status_code == 415
    r = client.post(
        "/v1/attachments",
        {"file": [SimpleUploadedFile("a.txt", b"a"), SimpleUploadedFile("b.txt", b"b")]},
    )
    assert r.status_code == 400
    assert upload(client, "empty.txt", b"").status_code == 400
    assert APIClient().post("/v1/attachments", {"file": SimpleUploadedFile("a.txt", b"a")}).status_code == 401
    assert not Attachment.objects.exists()


def test_web_chat_session_login_needs_the_csrf_token(tk):
    user = get_user_model().objects.create_user(username="chatter", password="pw-12345678")
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    r = client.post("/v1/attachments", {"file": SimpleUploadedFile("a.txt", b"a")})
    assert r.status_code == 403
    client.get("/")  # the chat page sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    r = client.post("/v1/attachments", {"file": SimpleUploadedFile("a.txt", b"a")}, HTTP_X_CSRFTOKEN=token)
    assert r.status_code == 201, r.content
    assert Attachment.objects.get().tenant.name == "default"


def test_admin_lists_filters_and_downloads_even_quarantined_files(tk):
    aid = upload(client_for(tk.key), "run.sh", b"#!/bin/sh\n", "text/plain").json()["attachment_id"]
    staff = get_user_model().objects.create_superuser(username="staff", password="pw-12345678")
    client = APIClient()
    client.force_login(staff)
    page = client.get("/admin/conversations/attachment/?status__exact=quarantined")
    assert page.status_code == 200 and b"run.sh" in page.content
    assert f"/admin/conversations/attachment/{aid}/download/".encode() in page.content
    got = client.get(f"/admin/conversations/attachment/{aid}/download/")
    assert got.status_code == 200 and got.content == b"#!/bin/sh\n"
    assert got["Content-Disposition"].startswith("attachment") and got["X-Content-Type-Options"] == "nosniff"
    client.post(
        "/admin/conversations/attachment/",
        {"action": "release", "_selected_action": [aid]},
    )
    assert Attachment.objects.get(pk=aid).status == "clean"
    anonymous = APIClient().get(f"/admin/conversations/attachment/{aid}/download/")
    assert anonymous.status_code == 302


def test_inline_display_only_for_raster_images(tk):
    client = client_for(tk.key)
    png = upload(client, "a.png", PNG, "image/png").json()["attachment_id"]
    txt = upload(client, "a.txt", b"text").json()["attachment_id"]
    shown = client.get(f"/v1/attachments/{png}/content?inline=1")
    assert shown["Content-Disposition"] == 'inline; filename="a.png"' and shown["Content-Type"] == "image/png"
    assert client.get(f"/v1/attachments/{txt}/content?inline=1")["Content-Disposition"].startswith(
        "attachment"
    )
