"""Citations in the web chat: timeline.js keeps them from assistant.final (node), and the chat
shows them as numbered sources under the reply that open the document, a PDF at the cited page
(headless Chromium, live system, stub model)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from documents.services.collections import collection_create, document_upload
from documents.services.ingest import document_ingest
from somaagent.identity.principal import DEFAULT_TENANT_NAME
from somaagent.models import Tenant
from tests.documents import samples
from tests.live import wait_until
from tests.webchat.jsrun import node_eval


def _ingested(document: Any) -> None:
    """Ingest here, unless the live system's worker (the upload's outbox task) got there first."""
    assert document_ingest(document_id=str(document.pk)) in ("ready", "skipped")

    def ready() -> bool:
        document.refresh_from_db()
        assert document.status != "failed", document.reason
        return document.status == "ready"

    wait_until(ready, timeout=60, what="the document ingested")


FOLD = """
const t = new mod(0);
input.events.forEach(e => t.apply(e));
return t.items;
"""


def ev(seq: int, type: str, **data: Any) -> dict[str, Any]:
    return {"id": str(seq), "event_id": f"e{seq}", "session_id": "s", "type": type, "role": "x", "data": data}


def test_timeline_keeps_the_final_events_citations():
    cited = {
        "index": 1,
        "document_id": "d1",
        "collection_id": "c1",
        "filename": "manual.pdf",
        "page": 2,
        "snippet": "eighteen hours",
    }
    events = [
        ev(1, "user.message", message="hi", attachments=[]),
        ev(2, "assistant.final", message="It lasts 18 h [1].", model="m", citations=[cited, "junk"]),
        ev(3, "user.message", message="again", attachments=[]),
        ev(4, "assistant.final", message="No sources.", model="m"),
    ]
    items = node_eval("timeline.js", FOLD, {"events": events})
    assert items[1]["citations"] == [
        {
            "index": 1,
            "documentId": "d1",
            "collectionId": "c1",
            "filename": "manual.pdf",
            "page": 2,
            "snippet": "eighteen hours",
        }
    ]
    assert items[3]["citations"] == []


@pytest.mark.browser
@pytest.mark.integration
def test_the_chat_shows_numbered_sources_under_the_reply(chat_page, live_system, chat_user):
    page = chat_page
    tenant = Tenant.objects.get(name=DEFAULT_TENANT_NAME)
    word = f"quokka{uuid.uuid4().hex[:6]}"
    collection = collection_create(tenant=tenant, name="mine", owner=chat_user.user)
    document, _ = document_upload(
        collection=collection,
        filename="animals.md",
        declared_type="text/markdown",
        content=f"# Marsupials\n\nThe {word} lives on Rottnest Island.".encode(),
        max_bytes=10**6,
    )
    _ingested(document)
    box = page.get_by_label("Message", exact=True)
    box.fill(f"Where does the {word} live?")
    box.press("Enter")
    sources = page.locator("article.msg.assistant[data-state=done] ol.citations li")
    sources.first.wait_for(timeout=60_000)
    text = sources.first.inner_text()
    assert text.startswith("[1] animals.md") and "Rottnest Island" in text
    assert sources.first.get_attribute("data-document-id") == str(document.pk)


@pytest.mark.browser
@pytest.mark.integration
def test_a_cited_pdf_opens_at_the_cited_page(chat_page, live_system, chat_user):
    from playwright.sync_api import expect  # here: without playwright, the browser fixture skips

    page = chat_page
    tenant = Tenant.objects.get(name=DEFAULT_TENANT_NAME)
    word = f"numbat{uuid.uuid4().hex[:6]}"
    collection = collection_create(tenant=tenant, name="pdfs", owner=chat_user.user)
    content = samples.pdf([["A cover page."], [f"The {word} eats termites."], ["An index page."]])
    document, _ = document_upload(
        collection=collection,
        filename="animals.pdf",
        declared_type="application/pdf",
        content=content,
        max_bytes=10**6,
    )
    _ingested(document)
    box = page.get_by_label("Message", exact=True)
    box.fill(f"What does the {word} eat?")
    box.press("Enter")
    link = page.locator("article.msg.assistant[data-state=done] ol.citations li a.cite-where").first
    link.wait_for(timeout=60_000)
    href = f"/v1/collections/{collection.pk}/documents/{document.pk}/file#page=2"
    assert link.inner_text() == "animals.pdf, page 2" and link.get_attribute("href") == href
    with page.context.expect_page() as opened:
        link.click()
    viewer = opened.value
    assert viewer.url == f"{live_system.url}{href}"

    # Chromium's own PDF viewer shows it (not blocked by the sandbox CSP, not a download)...
    frame = None
    for _ in range(300):  # Playwright learns of new frames while it runs, hence its own waits
        frame = next((f for f in viewer.frames if f.url.startswith("chrome-extension://")), None)
        if frame is not None:
            break
        viewer.wait_for_timeout(100)
    assert frame is not None, f"no PDF viewer in {[f.url for f in viewer.frames]}"
    # ...at the cited page
    expect(frame.locator("#pageSelector")).to_have_value("2", timeout=30_000)
    viewer.close()


@pytest.mark.browser
@pytest.mark.integration
def test_files_added_or_dropped_in_a_chat_are_read_and_cited(chat_page, live_system, tmp_path):
    page = chat_page
    word = f"wombat{uuid.uuid4().hex[:6]}"
    box = page.get_by_label("Message", exact=True)
    box.fill("hello")
    box.press("Enter")
    page.locator("article.msg.assistant[data-state=done]").first.wait_for(timeout=60_000)
    notes = tmp_path / "notes.md"
    notes.write_text(f"# Burrows\n\nThe {word} digs burrows with its claws.")
    page.evaluate(
        """() => {
            window.somaSent = -1;  // the highest value a chip's upload progress bar showed
            new MutationObserver(() => document.querySelectorAll('#chat-files progress').forEach((bar) => {
                window.somaSent = Math.max(window.somaSent, Number(bar.getAttribute('value')));
            })).observe(document.getElementById('chat-files'), {subtree: true, childList: true});
        }"""
    )
    page.set_input_files("#doc-input", str(notes))
    chip = page.locator("#chat-files li", has_text="notes.md")
    page.locator("#chat-files li[data-state=ready]", has_text="notes.md").wait_for(timeout=90_000)
    assert "ready" in chip.inner_text()
    assert page.evaluate("() => window.somaSent") == 100
    # a dropped file that cannot be read ends failed with its reason
    page.evaluate(
        """() => {
            const dt = new DataTransfer();
            dt.items.add(new File(["not a pdf"], "broken.pdf", {type: "application/pdf"}));
            const log = document.getElementById('log');
            log.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true}));
            log.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
        }"""
    )
    failed = page.locator("#chat-files li[data-state=failed]", has_text="broken.pdf")
    failed.wait_for(timeout=30_000)
    assert "does not look like a PDF" in failed.inner_text()
    box.fill(f"How does the {word} dig?")
    box.press("Enter")
    sources = page.locator("article.msg.assistant[data-state=done] ol.citations li")
    sources.first.wait_for(timeout=60_000)
    assert sources.first.inner_text().startswith("[1] notes.md")
