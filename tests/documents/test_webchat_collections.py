"""The web chat's Collections panel in headless Chromium against a live system (its worker ingests
the uploads through the outbox): make a private collection, upload a Markdown file and a PDF with a
progress bar each, see them reach ready, open one, refused files, delete; the statuses of documents
still being read (refreshed until final), a refusal by the API shown as such, and what an admin sees."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest

from documents.models import Collection, Document
from documents.services.collections import collection_create
from somaagent.identity.principal import DEFAULT_TENANT_NAME
from somaagent.models import Membership, Tenant
from tests.documents import samples

pytestmark = [pytest.mark.browser, pytest.mark.integration]

# Every upload row added to the panel, with the highest value its progress bar showed.
WATCH_UPLOADS = """() => {
    window.somaUploads = {};
    const seen = (row) => {
        const bar = row.querySelector('progress');
        const name = row.firstChild.textContent;
        const best = window.somaUploads[name] || 0;
        window.somaUploads[name] = Math.max(best, bar ? Number(bar.getAttribute('value')) : -1);
    };
    new MutationObserver((changes) => changes.forEach((m) => {
        const row = m.target.closest && m.target.closest('li.upload');
        if (row) seen(row);
        m.addedNodes.forEach((n) => { if (n.matches && n.matches('li.upload')) seen(n); });
    })).observe(document.getElementById('collection-list'),
                {subtree: true, childList: true, attributes: true, attributeFilter: ['value']});
}"""

DROP = """([selector, name, type, text]) => {
    const dt = new DataTransfer();
    dt.items.add(new File([text], name, {type}));
    const target = document.querySelector(selector);
    target.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true}));
    target.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
}"""


def _open(page: Any) -> Any:
    page.get_by_role("button", name="Collections").click()
    dialog = page.locator("dialog#collections")
    dialog.wait_for()
    return dialog


def test_make_a_collection_upload_open_and_delete(chat_page: Any, chat_user: Any, tmp_path: Path) -> None:
    page = chat_page
    dialog = _open(page)
    assert dialog.locator("#collection-shared-row").is_hidden()  # a member makes private ones only
    dialog.get_by_label("Name").fill("Field notes")
    dialog.get_by_role("button", name="Create collection").click()
    section = dialog.locator("li.collection", has_text="Field notes")
    section.wait_for()
    assert "private: yours alone" in section.inner_text()
    collection = Collection.objects.get(owner=chat_user.user, name="Field notes")
    assert collection.kind == "private"

    word = f"bilby{uuid.uuid4().hex[:6]}"
    notes = tmp_path / "notes.md"
    notes.write_text(f"# Burrows\n\nThe {word} digs spiral burrows.")
    guide = tmp_path / "guide.pdf"
    guide.write_bytes(samples.pdf([["A cover page."], [f"The {word} eats seeds."]]))
    page.evaluate(WATCH_UPLOADS)
    section.locator("input[type=file]").set_input_files([str(notes), str(guide)])
    for name in ("notes.md", "guide.pdf"):  # read by the live worker; the page polls until final
        section.locator("li.doc[data-state=ready]", has_text=name).wait_for(timeout=90_000)
    assert page.evaluate("() => window.somaUploads") == {"notes.md": 100, "guide.pdf": 100}
    assert section.locator("li.upload").count() == 0  # an upload's row goes once its document shows
    pdf_row = section.locator("li.doc", has_text="guide.pdf")
    assert "ready, 2 pages" in pdf_row.inner_text()

    # a document's name opens its file
    document = Document.objects.get(collection=collection, filename="notes.md")
    link = section.get_by_role("link", name="notes.md")
    assert link.get_attribute("href") == f"/v1/collections/{collection.pk}/documents/{document.pk}/file"
    with page.context.expect_page() as opened:
        link.click()
    viewer = opened.value
    viewer.wait_for_load_state()
    assert word in viewer.locator("body").inner_text()
    viewer.close()

    # refused files: the type here, before sending; a "PDF" that is not one by the API (415)
    selector = f"li.collection[data-collection-id='{collection.pk}']"
    page.evaluate(DROP, [selector, "photo.png", "image/png", "\x89PNG"])
    refused = section.locator("li.upload[data-state=failed]", has_text="photo.png")
    refused.wait_for()
    assert ".png files are not accepted" in refused.inner_text()
    page.evaluate(DROP, [selector, "broken.pdf", "application/pdf", "not a pdf"])
    broken = section.locator("li.upload[data-state=failed]", has_text="broken.pdf")
    broken.wait_for()
    assert "does not look like a PDF" in broken.inner_text()
    broken.get_by_role("button", name="Dismiss broken.pdf").click()
    broken.wait_for(state="detached")
    assert Document.objects.filter(collection=collection).count() == 2

    page.once("dialog", lambda d: d.accept())  # the browser's "Delete …?" confirmation
    section.get_by_role("button", name="Delete notes.md").click()
    section.locator("li.doc", has_text="notes.md").wait_for(state="detached")
    assert list(Document.objects.filter(collection=collection).values_list("filename", flat=True)) == [
        "guide.pdf"
    ]

    page.once("dialog", lambda d: d.accept())
    section.get_by_role("button", name="Delete the collection Field notes").click()
    section.wait_for(state="detached")
    assert not Collection.objects.filter(pk=collection.pk).exists()


def _document(collection: Collection, name: str, **fields: Any) -> Document:
    content = f"{name} {uuid.uuid4()}".encode()
    return Document.objects.create(
        tenant=collection.tenant,
        collection=collection,
        filename=name,
        content_type="text/plain",
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
        content=content,
        **fields,
    )


def test_statuses_refresh_until_final_and_refusals_are_shown(chat_page: Any, chat_user: Any) -> None:
    page = chat_page
    tenant = Tenant.objects.get(name=DEFAULT_TENANT_NAME)
    name = f"Manuals {uuid.uuid4().hex[:6]}"
    mine = collection_create(tenant=tenant, name=name, owner=chat_user.user)
    reading = _document(mine, "reading.txt", status="processing", progress=40)
    _document(mine, "waiting.txt", status="queued")
    _document(mine, "bomb.docx", status="failed", reason="The DOCX expands to 300 MB, over the limit.")
    _document(
        mine,
        "vectors.txt",
        status="ready",
        embedding_status="failed",
        embedding_reason="The embeddings service answered HTTP 503.",
    )
    shared_name = f"Handbook {uuid.uuid4().hex[:6]}"
    shared = collection_create(tenant=tenant, name=shared_name)
    _document(shared, "policy.txt", status="ready")
    try:
        dialog = _open(page)
        section = dialog.locator("li.collection", has_text=name)
        row = section.locator("li.doc", has_text="reading.txt")
        row.wait_for()
        assert "processing 40%" in row.inner_text()
        assert row.locator("progress").get_attribute("value") == "40"
        assert "queued" in section.locator("li.doc", has_text="waiting.txt").inner_text()
        failed = section.locator("li.doc[data-state=failed]", has_text="bomb.docx").inner_text()
        assert "failed: The DOCX expands to 300 MB" in failed
        keywords = section.locator("li.doc", has_text="vectors.txt").locator(".doc-status")
        assert "ready, keywords only" in keywords.inner_text()
        assert keywords.get_attribute("title") == "The embeddings service answered HTTP 503."

        # the panel reads the documents again while any is not final
        Document.objects.filter(pk=reading.pk).update(progress=80)
        section.locator("li.doc", has_text="reading.txt").get_by_text("processing 80%").wait_for()
        Document.objects.filter(pk=reading.pk).update(status="ready", progress=100)
        section.locator("li.doc[data-state=ready]", has_text="reading.txt").wait_for()

        # a member reads the shared collection but is offered no change to it
        handbook = dialog.locator("li.collection", has_text=shared_name)
        assert "shared with your tenant" in handbook.inner_text()
        handbook.locator("li.doc[data-state=ready]", has_text="policy.txt").wait_for()
        assert handbook.get_by_role("button").count() == 0
        assert handbook.locator("input[type=file]").count() == 0

        # the API refuses (here: the collection went meanwhile): its message is shown
        Document.objects.filter(collection=mine, status="queued").update(status="ready")
        section.locator("li.doc[data-state=ready]", has_text="waiting.txt").wait_for()  # no more polling
        Collection.objects.filter(pk=mine.pk).delete()
        page.once("dialog", lambda d: d.accept())
        section.get_by_role("button", name=f"Delete the collection {name}").click()
        dialog.get_by_role("alert").get_by_text("No such collection.").wait_for()
        section.wait_for(state="detached")  # and the list is read again
    finally:
        Collection.objects.filter(pk__in=[mine.pk, shared.pk]).delete()


def test_a_tenant_admin_makes_shared_collections_and_sees_whose_private_ones(
    chat_page: Any, chat_user: Any
) -> None:
    page = chat_page
    tenant = Tenant.objects.get(name=DEFAULT_TENANT_NAME)
    Membership.objects.filter(user=chat_user.user, tenant=tenant).update(role=Membership.Role.ADMIN)
    from django.contrib.auth import get_user_model

    bob = get_user_model().objects.create_user(username=f"bob-{uuid.uuid4().hex[:6]}", password="x" * 12)
    bobs = collection_create(tenant=tenant, name=f"Bob's {uuid.uuid4().hex[:6]}", owner=bob)
    made: list[Any] = [bobs.pk]
    try:
        page.reload()
        dialog = _open(page)
        bobs_row = dialog.locator("li.collection", has_text=bobs.name)
        assert f"private to {bob.username}" in bobs_row.inner_text()
        name = f"Team {uuid.uuid4().hex[:6]}"
        dialog.get_by_label("Name").fill(name)
        dialog.get_by_label(f"Shared with everyone in {DEFAULT_TENANT_NAME}").check()
        dialog.get_by_role("button", name="Create collection").click()
        section = dialog.locator("li.collection", has_text=name)
        section.wait_for()
        shared = Collection.objects.get(tenant=tenant, name=name)
        made.append(shared.pk)
        assert shared.kind == "shared" and "shared with your tenant" in section.inner_text()
        assert section.locator("input[type=file]").count() == 1  # an admin uploads into it
    finally:
        Collection.objects.filter(pk__in=made).delete()
