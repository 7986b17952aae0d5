"""Citations in the web chat: timeline.js keeps them from assistant.final (node), and the chat
shows them as numbered sources under the reply (headless Chromium, live system, stub model)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from documents.services.collections import collection_create, document_upload
from documents.services.ingest import document_ingest
from somaagent.identity import DEFAULT_TENANT_NAME
from somaagent.models import Tenant
from tests.webchat.jsrun import node_eval

FOLD = """
const t = new mod(0);
input.events.forEach(e => t.apply(e));
return t.items;
"""


def ev(seq: int, type: str, **data: Any) -> dict[str, Any]:
    return {"id": str(seq), "event_id": f"e{seq}", "session_id": "s", "type": type, "role": "x", "data": data}


def test_timeline_keeps_the_final_events_citations():  # type: ignore[no-untyped-def]
    cited = {
        "index": 1,
        "document_id": "d1",
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
        {"index": 1, "documentId": "d1", "filename": "manual.pdf", "page": 2, "snippet": "eighteen hours"}
    ]
    assert items[3]["citations"] == []


@pytest.mark.browser
@pytest.mark.integration
def test_the_chat_shows_numbered_sources_under_the_reply(chat_page, live_system, chat_user):  # type: ignore[no-untyped-def]
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
    assert document_ingest(document_id=str(document.pk)) == "ready"
    box = page.get_by_label("Message", exact=True)
    box.fill(f"Where does the {word} live?")
    box.press("Enter")
    sources = page.locator("article.msg.assistant[data-state=done] ol.citations li")
    sources.first.wait_for(timeout=60_000)
    text = sources.first.inner_text()
    assert text.startswith("[1] animals.md") and "Rottnest Island" in text
    assert sources.first.get_attribute("data-document-id") == str(document.pk)
