"""End to end with the live web server, worker and beat: uploads over real HTTP, ingestion on
the Celery worker (hostile files end failed in bounded time), and a real turn with the stub
model whose ``assistant.final`` carries the citations."""

from __future__ import annotations

from typing import Any

import pytest

from documents.models import Chunk, Document
from documents.services.collections import collection_create
from somaagent.identity.apikeys import api_key_create
from tests.documents import samples
from tests.live import LiveSystem, wait_until
from tests.memory.flow import chat, llm_request_ending_with

pytestmark = pytest.mark.integration


def admin_key(tenant: Any) -> str:
    _, raw = api_key_create(
        tenant=tenant,
        name="admin",
        scopes=["admin", "conversations:read", "conversations:write", "attachments:write"],
    )
    return raw


def upload(system: LiveSystem, key: str, collection_id: object, name: str, content: bytes, mime: str) -> Any:
    with system.client(key) as c:
        return c.post(f"/v1/collections/{collection_id}/documents", files={"file": (name, content, mime)})


def settled(document_id: str, timeout: float = 90) -> Document:
    def done() -> Document | None:
        doc = Document.objects.defer("content").get(pk=document_id)
        return doc if doc.status in ("ready", "failed") else None

    return wait_until(done, timeout=timeout, interval=0.2, what=f"document {document_id} ingested")


def test_uploaded_files_are_ingested_and_a_turn_cites_them(live_system, tenant_key, llm_stub):
    system, tenant = live_system, tenant_key.tenant
    key = admin_key(tenant)
    collection = collection_create(tenant=tenant, name="Headset manual")
    pdf = samples.pdf(
        [
            ["Aurora headset manual.", "Unbox the headset and charge it before first use."],
            ["The Aurora headset battery lasts eighteen hours of playback.", "It charges over USB-C."],
        ],
        title="Aurora manual",
    )
    docx = samples.docx(
        [("h1", "Warranty"), ("p", "The Aurora warranty lasts two years, water damage excluded.")]
    )
    r1 = upload(system, key, collection.pk, "manual.pdf", pdf, "application/pdf")
    r2 = upload(system, key, collection.pk, "warranty.docx", docx, samples_docx_type())
    assert r1.status_code == 201 and r2.status_code == 201, (r1.text, r2.text)
    again = upload(system, key, collection.pk, "manual-copy.pdf", pdf, "application/pdf")
    assert again.status_code == 200 and again.json()["document_id"] == r1.json()["document_id"]
    manual, warranty = settled(r1.json()["document_id"]), settled(r2.json()["document_id"])
    assert (manual.status, manual.pages, warranty.status) == ("ready", 2, "ready"), (
        manual.reason,
        warranty.reason,
    )

    question = "How many hours does the Aurora battery last?"
    _, final = chat(system, tenant_key.key, question)
    citations = final["data"]["citations"]
    assert citations and citations[0]["index"] == 1
    top = citations[0]
    assert top["filename"] == "manual.pdf" and top["page"] == 2 and "eighteen hours" in top["snippet"]
    assert top["document_id"] == str(manual.pk)
    sent = llm_request_ending_with(llm_stub.url, question)
    system_text = "\n".join(m["content"] for m in sent["messages"] if m["role"] == "system")
    assert "<documents>" in system_text and "eighteen hours" in system_text and "[1]" in system_text

    # deleting the document removes its chunks, and the next turn no longer cites it
    with system.client(key) as c:
        assert c.delete(f"/v1/collections/{collection.pk}/documents/{manual.pk}").status_code == 204
    assert not Chunk.objects.filter(document_id=manual.pk).exists()
    _, final = chat(system, tenant_key.key, question)
    assert all(c["document_id"] != str(manual.pk) for c in final["data"]["citations"])


def samples_docx_type() -> str:
    return "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def test_hostile_files_end_failed_with_a_reason_and_the_worker_goes_on(live_system, tenant_key):
    system, tenant = live_system, tenant_key.tenant
    key = admin_key(tenant)
    collection = collection_create(tenant=tenant, name="Hostile")
    bomb = upload(system, key, collection.pk, "bomb.docx", samples.zip_bomb_docx(), samples_docx_type())
    nested = upload(system, key, collection.pk, "nested.pdf", samples.nested_pdf(), "application/pdf")
    good = upload(system, key, collection.pk, "fine.txt", b"The worker still reads files.", "text/plain")
    assert bomb.status_code == nested.status_code == good.status_code == 201
    failed_bomb, failed_nested = settled(bomb.json()["document_id"]), settled(nested.json()["document_id"])
    assert failed_bomb.status == "failed" and "expands to 300 MB" in failed_bomb.reason
    assert failed_nested.status == "failed" and failed_nested.reason
    assert settled(good.json()["document_id"]).status == "ready"
    with system.client(key) as c:
        listed = c.get(f"/v1/collections/{collection.pk}/documents").json()["documents"]
    reasons = {d["filename"]: (d["status"], d["reason"]) for d in listed}
    assert reasons["bomb.docx"][0] == "failed" and reasons["bomb.docx"][1] == failed_bomb.reason


def test_a_file_over_the_limit_is_refused_while_it_streams_in(live_system, tenant_key):
    system, tenant = live_system, tenant_key.tenant
    key = admin_key(tenant)
    collection = collection_create(tenant=tenant, name="Big")
    r = upload(system, key, collection.pk, "big.txt", b"a" * (21 * 1024 * 1024), "text/plain")
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert not Document.objects.filter(collection=collection).exists()
