"""Collections and documents over the API: kinds and who may create them, uploads and their
refusals, idempotent re-upload, ingestion results, delete, and scoping (another's ids: 404)."""

from __future__ import annotations

import pytest

from conversations.models import Session
from documents.models import Chunk, Document
from documents.services.ingest import document_ingest
from somaagent.models import Membership, Persona
from tests.documents import samples
from tests.documents.helpers import create_collection, key_client, member, new_tenant, upload

pytestmark = pytest.mark.django_db


def ingest(document_id: str) -> Document:
    document_ingest(document_id=document_id)
    return Document.objects.get(pk=document_id)


def test_every_type_is_ingested_with_pages_and_headings():
    tenant = new_tenant()
    admin = key_client(tenant)
    cid = create_collection(admin)
    files = [
        ("guide.pdf", samples.pdf([["Refunds take five days."], ["Shipping is free."]]), "application/pdf"),
        ("leave.docx", samples.docx([("h1", "Leave"), ("p", "Twenty days.")]), "application/octet-stream"),
        ("page.html", b"<h1>Office</h1><p>Open at nine.</p>", "text/html"),
        ("notes.md", b"# Parking\n\nLevel two.\n", "text/markdown"),
        ("plain.txt", b"Lunch is at noon.", "text/plain"),
        ("people.csv", b"name,team\nAda,Core\n", "text/csv"),
    ]
    for name, content, mime in files:
        r = upload(admin, cid, name, content, mime)
        assert r.status_code == 201, (name, r.content)
        assert r.json()["status"] == "queued"
        document = ingest(r.json()["document_id"])
        assert document.status == "ready", (name, document.reason)
        assert document.progress == 100 and document.chunks_count >= 1
    chunks: dict[str, Chunk] = {}
    for chunk in Chunk.objects.filter(collection_id=cid).select_related("document").order_by("ordinal"):
        chunks.setdefault(chunk.document.filename, chunk)  # each file's first chunk
    assert chunks["guide.pdf"].page == 1 and Document.objects.get(filename="guide.pdf").pages == 2
    assert chunks["leave.docx"].heading == "Leave" and chunks["page.html"].heading == "Office"
    assert chunks["notes.md"].heading == "Parking" and chunks["people.csv"].text == "name: Ada; team: Core"
    listed = admin.get(f"/v1/collections/{cid}/documents").json()["documents"]
    assert sorted(d["filename"] for d in listed) == sorted(f[0] for f in files)
    assert all(d["status"] == "ready" and d["chunks"] >= 1 for d in listed)


def test_bad_uploads_get_clear_4xx_and_store_nothing(monkeypatch):
    tenant = new_tenant()
    admin = key_client(tenant)
    cid = create_collection(admin)
    cases = [
        (
            upload(admin, cid, "a.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 20, "image/png"),
            415,
            "unsupported_media_type",
        ),
        (upload(admin, cid, "a.pdf", b"not a pdf", "application/pdf"), 415, "unsupported_media_type"),
        (upload(admin, cid, "a.txt", b"caf\xe9 \x00", "text/plain"), 415, "unsupported_media_type"),
        (upload(admin, cid, "a.txt", b"", "text/plain"), 400, "validation_error"),
        (admin.post(f"/v1/collections/{cid}/documents", {}), 400, "validation_error"),
    ]
    for response, code, error in cases:
        assert response.status_code == code, response.content
        assert response.json()["error"]["code"] == error
    from documents import conf

    conf.documents_settings.cache_clear()
    monkeypatch.setenv("SOMA_DOCUMENTS_MAX_BYTES", "10")
    try:
        r = upload(admin, cid, "big.txt", b"x" * 11)
        assert r.status_code == 413 and r.json()["error"]["details"]["max_bytes"] == 10
    finally:
        conf.documents_settings.cache_clear()
    assert not Document.objects.filter(collection_id=cid).exists()
    assert admin.post("/v1/collections", {"name": ""}, format="json").status_code == 400
    assert admin.post("/v1/collections", {"name": "x", "kind": "chat"}, format="json").status_code == 400
    assert admin.post("/v1/collections", {"name": "x", "other": 1}, format="json").status_code == 400


def test_the_same_file_twice_does_no_work_twice():
    admin = key_client(new_tenant())
    cid = create_collection(admin)
    first = upload(admin, cid, "a.txt", b"same bytes")
    again = upload(admin, cid, "renamed.txt", b"same bytes")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["document_id"] == first.json()["document_id"]
    assert ingest(first.json()["document_id"]).status == "ready"
    assert document_ingest(document_id=first.json()["document_id"]) == "skipped"  # a duplicate delivery
    assert Chunk.objects.filter(document_id=first.json()["document_id"]).count() == 1
    other = create_collection(admin, "Other")
    assert upload(admin, other, "a.txt", b"same bytes").status_code == 201  # another collection: its own


def test_delete_removes_chunks_and_they_are_never_found_again():
    from documents.retrieval import turn_documents

    tenant = new_tenant()
    admin = key_client(tenant)
    cid = create_collection(admin)
    did = upload(admin, cid, "a.md", b"# Zebra\n\nZebras graze at dawn.").json()["document_id"]
    ingest(did)

    def found() -> list[str]:
        got = turn_documents(
            tenant_id=tenant.pk,
            persona_id=None,
            session_id=tenant.pk,
            owner_id=None,
            query="when do zebras graze",
        )
        return [c["document_id"] for c in got.citations]

    assert found() == [did]
    assert admin.delete(f"/v1/collections/{cid}/documents/{did}").status_code == 204
    assert not Chunk.objects.filter(document_id=did).exists() and found() == []
    did = upload(admin, cid, "b.md", b"Zebras graze at dawn again.").json()["document_id"]
    ingest(did)
    assert admin.delete(f"/v1/collections/{cid}").status_code == 204
    assert not Chunk.objects.filter(collection_id=cid).exists() and found() == []
    assert admin.get(f"/v1/collections/{cid}").status_code == 404


def test_scoping_other_tenants_and_other_members_get_404():
    tenant, elsewhere = new_tenant(), new_tenant()
    admin, stranger = key_client(tenant), key_client(elsewhere)
    alice, bob = member(tenant), member(tenant)
    shared = create_collection(admin, "Shared")
    private = create_collection(alice, "Alice's")
    assert alice.get(f"/v1/collections/{private}").json()["kind"] == "private"
    did = upload(alice, private, "mine.txt", b"alice only").json()["document_id"]
    for client, cid in [(stranger, shared), (stranger, private), (bob, private)]:
        for method, path in [
            ("get", f"/v1/collections/{cid}"),
            ("get", f"/v1/collections/{cid}/documents"),
            ("delete", f"/v1/collections/{cid}"),
            ("get", f"/v1/collections/{cid}/documents/{did}"),
            ("get", f"/v1/collections/{cid}/documents/{did}/file"),
            ("delete", f"/v1/collections/{cid}/documents/{did}"),
        ]:
            assert getattr(client, method)(path).status_code == 404, (method, path)
        assert upload(client, cid, "x.txt", b"x").status_code == 404
    assert {c["name"] for c in bob.get("/v1/collections").json()["collections"]} == {"Shared"}
    assert {c["name"] for c in alice.get("/v1/collections").json()["collections"]} == {"Shared", "Alice's"}
    assert stranger.get("/v1/collections").json()["collections"] == []
    # members read shared collections but only admins change them
    assert bob.get(f"/v1/collections/{shared}/documents").status_code == 200
    assert upload(bob, shared, "x.txt", b"x").status_code == 403
    assert bob.delete(f"/v1/collections/{shared}").status_code == 403
    assert bob.post("/v1/collections", {"name": "S", "kind": "shared"}, format="json").status_code == 403
    assert admin.get(f"/v1/collections/{private}").status_code == 200  # a tenant admin sees the tenant's
    assert alice.get("/v1/collections/not-a-uuid").status_code == 404
    assert Document.objects.filter(pk=did).exists()


def test_a_collection_names_its_owner_so_an_admin_tells_members_private_ones_apart():
    tenant = new_tenant()
    admin, alice = member(tenant, Membership.Role.ADMIN), member(tenant)
    create_collection(admin, "Shared")
    create_collection(alice, "Alice's")
    create_collection(admin, "Admin's own", kind="private")
    listed = {c["name"]: (c["kind"], c["owner"]) for c in admin.get("/v1/collections").json()["collections"]}
    assert listed == {
        "Shared": ("shared", None),
        "Alice's": ("private", alice.user.username),
        "Admin's own": ("private", admin.user.username),
    }
    mine = alice.get("/v1/collections").json()["collections"]
    assert {c["name"]: c["owner"] for c in mine} == {"Shared": None, "Alice's": alice.user.username}


def test_chat_files_need_the_chat_and_personas_must_be_the_tenants():
    tenant, elsewhere = new_tenant(), new_tenant()
    alice, bob = member(tenant), member(tenant)
    session = Session.objects.create(tenant=tenant, created_by=alice.user)
    body = {"session_id": str(session.pk)}
    assert bob.post("/v1/chat-files", body, format="json").status_code == 404
    first = alice.post("/v1/chat-files", body, format="json")
    assert first.status_code == 201 and first.json()["kind"] == "chat"
    assert alice.post("/v1/chat-files", body, format="json").json() == first.json()  # one per chat
    cid = first.json()["collection_id"]
    assert upload(alice, cid, "a.txt", b"chat file").status_code == 201
    assert upload(bob, cid, "b.txt", b"not bob's").status_code == 404
    assert alice.delete(f"/v1/sessions/{session.pk}").status_code == 204  # the chat's files go with it
    assert not Document.objects.filter(collection_id=cid).exists()
    assert alice.get(f"/v1/collections/{cid}").status_code == 404
    foreign = Persona.objects.create(tenant=elsewhere, name="p")
    r = key_client(tenant).post(
        "/v1/collections", {"name": "x", "persona_ids": [str(foreign.pk)]}, format="json"
    )
    assert r.status_code == 404
    assert Membership.objects.filter(tenant=tenant).count() == 2


def test_the_original_file_opens_in_the_browser_sandboxed_or_is_saved():
    tenant = new_tenant()
    admin, stranger = key_client(tenant), key_client(new_tenant())
    alice, bob = member(tenant), member(tenant)
    cid = create_collection(admin)
    pdf = samples.pdf([["Page one."], ["Page two."]])
    docx = samples.docx([("p", "Twenty days.")])
    files = [
        ("guide.pdf", pdf, "application/pdf", "application/pdf", "inline"),
        ("notes.md", b"# Parking\n\nLevel two.", "text/markdown", "text/plain; charset=utf-8", "inline"),
        ("people.csv", b"name\nAda\n", "text/csv", "text/plain; charset=utf-8", "inline"),
        ("page.html", b"<script>alert(1)</script>", "text/html", "text/html", "attachment"),
        ("leave.docx", docx, "application/octet-stream", samples_docx_type(), "attachment"),
    ]
    for name, content, mime, served_as, disposition in files:
        did = upload(admin, cid, name, content, mime).json()["document_id"]
        for client in (admin, alice):  # a shared collection: the tenant's members read it too
            r = client.get(f"/v1/collections/{cid}/documents/{did}/file")
            assert r.status_code == 200, (name, r.content)
            assert r.content == content and r["Content-Type"] == served_as, name
            assert r["Content-Disposition"] == f'{disposition}; filename="{name}"', name
            assert r["X-Content-Type-Options"] == "nosniff"
            assert r["Content-Security-Policy"] == "sandbox; default-src 'none'"
        gone = stranger.get(f"/v1/collections/{cid}/documents/{did}/file")
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    # a private collection's files are its owner's; a chat's files whoever may use the chat
    private = create_collection(alice, "Alice's")
    did = upload(alice, private, "mine.txt", b"alice only").json()["document_id"]
    assert alice.get(f"/v1/collections/{private}/documents/{did}/file").content == b"alice only"
    assert bob.get(f"/v1/collections/{private}/documents/{did}/file").status_code == 404
    session = Session.objects.create(tenant=tenant, created_by=bob.user)
    chat = bob.post("/v1/chat-files", {"session_id": str(session.pk)}, format="json").json()["collection_id"]
    did = upload(bob, chat, "chat.txt", b"bob's chat").json()["document_id"]
    assert bob.get(f"/v1/collections/{chat}/documents/{did}/file").content == b"bob's chat"
    assert alice.get(f"/v1/collections/{chat}/documents/{did}/file").status_code == 404
    # a document id under another collection of the same tenant is not found there
    assert admin.get(f"/v1/collections/{cid}/documents/{did}/file").status_code == 404
    assert admin.get(f"/v1/collections/{cid}/documents/not-a-uuid/file").status_code == 404


def samples_docx_type() -> str:
    return "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
