"""Embeddings and hybrid ranking against the stub ``/v1/embeddings`` server over real HTTP:
vectors stored at ingestion (batched, retried), a chunk that full text misses found through a
synonym, scoping in the vector path, and a failing endpoint (the document ends ready with
full-text search, the failure recorded and logged; a search degrades to full text)."""

from __future__ import annotations

import math
import uuid
from array import array
from typing import Any

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from documents.embeddings import OpenAIEmbeddings, endpoint_url
from documents.models import Chunk, Collection, Document
from documents.retrieval import turn_documents
from documents.search import chunk_search, fulltext_search
from documents.services.collections import collection_create, document_delete, document_upload
from documents.services.ingest import document_ingest
from documents.vectors import from_bytes, vector_search
from somaagent.models import Tenant
from tests.documents.conftest import STUB_KEY, STUB_MODEL, embeddings_reload
from tests.documents.corpus import DOCUMENTS, QUESTIONS
from tests.documents.helpers import key_client, new_tenant
from tests.documents.test_retrieval import RECALL_AT_5_FLOOR
from tests.stubs.embeddings_server import embed

pytestmark = pytest.mark.django_db

FLEET = "# Fleet\n\nEvery automobile gets its upkeep twice a year at the depot on Mill Road."
KITCHEN = "# Kitchen\n\nThe coffee machine is descaled on Fridays by whoever is last in."
QUESTION = "When is car maintenance done?"  # no word of FLEET: full text alone misses it


def add(collection: Collection, name: str, text: str) -> Document:
    document, _ = document_upload(
        collection=collection, filename=name, declared_type=None, content=text.encode(), max_bytes=10**6
    )
    document_ingest(document_id=str(document.pk))
    return Document.objects.defer("content").get(pk=document.pk)


def stub_requests(stub: Any) -> list[dict[str, Any]]:
    return list(httpx.get(f"{stub.url}/_requests").json())


def control(stub: Any, **change: Any) -> None:
    httpx.post(f"{stub.url}/_control", json=change).raise_for_status()


def search(tenant: Tenant, collections: list[Collection], text: str) -> list[str]:
    hits = chunk_search(
        tenant_id=tenant.pk, collection_ids=[c.pk for c in collections], text=text, top_k=5, timeout=5
    )
    return [hit.filename for hit in hits]


def test_the_endpoint_url_may_name_the_endpoint_or_its_base():
    assert endpoint_url("http://h:1") == "http://h:1/v1/embeddings"
    assert endpoint_url("http://h:1/v1/") == "http://h:1/v1/embeddings"
    assert endpoint_url("http://h:1/api/v1/embeddings") == "http://h:1/api/v1/embeddings"


def test_ingestion_stores_a_unit_vector_per_chunk_in_batches(embeddings, monkeypatch):
    monkeypatch.setenv("SOMA_EMBEDDINGS_BATCH_SIZE", "2")
    embeddings_reload()
    collection = collection_create(tenant=new_tenant(), name="Handbook")
    text = "\n\n".join(f"# Part {n}\n\nSection {n} of the handbook is about topic {n}." for n in range(5))
    document = add(collection, "handbook.md", text)
    assert (document.status, document.embedding_status) == ("ready", "ready")
    assert document.embedding_model == STUB_MODEL and document.embedding_reason == ""
    chunks = list(Chunk.objects.filter(document=document).order_by("ordinal"))
    assert len(chunks) == 5
    requests = stub_requests(embeddings)
    assert [r["inputs"] for r in requests] == [2, 2, 1]
    assert {r["authorization"] for r in requests} == {f"Bearer {STUB_KEY}"}
    assert {r["model"] for r in requests} == {STUB_MODEL}
    for chunk in chunks:
        assert chunk.embedding is not None
        stored = from_bytes(bytes(chunk.embedding))
        assert len(stored) == 256 and math.isclose(sum(x * x for x in stored), 1.0, rel_tol=1e-4)
        expected = embed(f"{chunk.heading}\n{chunk.text}")
        norm = math.sqrt(sum(x * x for x in expected))
        assert sum(a * b / norm for a, b in zip(stored, expected, strict=True)) > 0.9999
    listed = key_client(collection.tenant).get(f"/v1/collections/{collection.pk}/documents").json()
    assert listed["documents"][0]["embedding_status"] == "ready"


def test_hybrid_search_finds_what_full_text_alone_misses(embeddings):
    tenant = new_tenant()
    collection = collection_create(tenant=tenant, name="Office")
    add(collection, "fleet.md", FLEET)
    add(collection, "kitchen.md", KITCHEN)
    alone = fulltext_search(
        tenant_id=tenant.pk, collection_ids=[collection.pk], text=QUESTION, top_k=5, timeout=5
    )
    assert alone == []
    assert search(tenant, [collection], QUESTION) == ["fleet.md"]
    # what full text finds is still found first, and an unrelated question finds nothing
    assert search(tenant, [collection], "coffee descaled")[0] == "kitchen.md"
    assert search(tenant, [collection], "quarterly tax filing") == []
    got = turn_documents(
        tenant_id=tenant.pk, persona_id=None, session_id=uuid.uuid4(), owner_id=None, query=QUESTION
    )
    assert [c["filename"] for c in got.citations] == ["fleet.md"]


def test_the_vector_path_keeps_tenants_and_members_apart(embeddings):
    tenant, elsewhere = new_tenant(), new_tenant()
    users = get_user_model().objects
    alice = users.create_user(username=f"a-{uuid.uuid4().hex[:6]}")
    bob = users.create_user(username=f"b-{uuid.uuid4().hex[:6]}")
    shared = collection_create(tenant=tenant, name="shared")
    add(shared, "kitchen.md", KITCHEN)
    add(collection_create(tenant=tenant, name="alice", owner=alice), "alice-fleet.md", FLEET)
    foreign = collection_create(tenant=elsewhere, name="x")
    add(foreign, "foreign-fleet.md", FLEET)

    def cited(tenant_id: uuid.UUID, owner: Any) -> list[str]:
        got = turn_documents(
            tenant_id=tenant_id, persona_id=None, session_id=uuid.uuid4(), owner_id=owner, query=QUESTION
        )
        return [c["filename"] for c in got.citations]

    assert cited(tenant.pk, bob.pk) == []
    assert cited(tenant.pk, alice.pk) == ["alice-fleet.md"]
    assert cited(elsewhere.pk, None) == ["foreign-fleet.md"]
    # another tenant's collection ids under this tenant find nothing either
    near = vector_search(
        tenant_id=tenant.pk,
        collection_ids=[foreign.pk],
        query=array("f", [1.0] + [0.0] * 255),
        model=STUB_MODEL,
        top_k=5,
        min_similarity=-1.0,
        timeout=5,
    )
    assert near == []
    assert search(tenant, [foreign], QUESTION) == []


def test_a_failing_endpoint_leaves_the_document_ready_by_full_text_and_says_so(
    embeddings, monkeypatch, caplog
):
    monkeypatch.setenv("SOMA_EMBEDDINGS_TIMEOUT", "1.5")
    embeddings_reload()
    control(embeddings, status=503)
    tenant = new_tenant()
    collection = collection_create(tenant=tenant, name="Office")
    document = add(collection, "fleet.md", FLEET)
    assert document.status == "ready" and document.chunks_count == 1
    assert document.embedding_status == "failed" and "503" in document.embedding_reason
    assert len(stub_requests(embeddings)) >= 2  # retried before giving up
    assert not Chunk.objects.filter(document=document, embedding__isnull=False).exists()
    assert "embedding failed; the document is searched by full text only" in caplog.text
    listed = key_client(tenant).get(f"/v1/collections/{collection.pk}/documents").json()["documents"]
    assert listed[0]["embedding_status"] == "failed" and "503" in listed[0]["embedding_reason"]
    # searching goes on by full text, with a warning that the query could not be embedded
    caplog.clear()
    assert search(tenant, [collection], "automobile depot") == ["fleet.md"]
    assert search(tenant, [collection], QUESTION) == []
    assert "query embedding failed; searching by full text only" in caplog.text
    # once the endpoint is back, the command embeds it again
    control(embeddings, reset=True)
    call_command("documents_embed")
    document.refresh_from_db()
    assert document.embedding_status == "ready" and document.embedding_reason == ""
    assert search(tenant, [collection], QUESTION) == ["fleet.md"]


def test_a_busy_endpoint_is_retried_honouring_retry_after(embeddings):
    control(embeddings, fail_first=2, retry_after="0")
    document = add(collection_create(tenant=new_tenant(), name="Office"), "fleet.md", FLEET)
    assert document.embedding_status == "ready"
    assert len(stub_requests(embeddings)) == 3


def test_without_an_endpoint_documents_are_full_text_only():
    embeddings_reload()
    document = add(collection_create(tenant=new_tenant(), name="Office"), "fleet.md", FLEET)
    assert (document.status, document.embedding_status, document.embedding_model) == ("ready", "off", "")
    assert not Chunk.objects.filter(document=document, embedding__isnull=False).exists()


def test_hybrid_recall_at_5_on_the_fixed_question_set(embeddings, capsys):
    tenant = new_tenant()
    collection = collection_create(tenant=tenant, name="Policies")
    for name, text in DOCUMENTS.items():
        assert add(collection, name, text).embedding_status == "ready"
    hits = sum(expected in search(tenant, [collection], question) for question, expected in QUESTIONS)
    recall = hits / len(QUESTIONS)
    with capsys.disabled():
        print(f"\ndocuments hybrid recall@5 (stub embedder) = {recall:.2f} ({hits}/{len(QUESTIONS)})")
    assert recall >= RECALL_AT_5_FLOOR


def test_cached_vectors_follow_new_and_deleted_documents(embeddings):
    tenant = new_tenant()
    collection = collection_create(tenant=tenant, name="Office")
    fleet = add(collection, "fleet.md", FLEET)

    def nearest() -> set[object]:
        """The documents of the chunks the vector pass finds ("gone": a chunk no longer stored)."""
        query = OpenAIEmbeddings(url=embeddings.url, model=STUB_MODEL).embed([QUESTION], timeout=5)[0]
        found = vector_search(
            tenant_id=tenant.pk,
            collection_ids=[collection.pk],
            query=query,
            model=STUB_MODEL,
            top_k=10,
            min_similarity=0.25,
            timeout=5,
        )
        owners = dict(Chunk.objects.filter(pk__in=[cid for cid, _ in found]).values_list("pk", "document_id"))
        return {owners.get(chunk_id, "gone") for chunk_id, _ in found}

    assert nearest() == {fleet.pk}  # read from the database, then kept
    garage = add(collection, "garage.md", "Our vehicles get their servicing at the garage.")
    assert nearest() == {fleet.pk, garage.pk}  # a new document: read again
    document_delete(document=fleet)
    assert nearest() == {garage.pk}  # a deleted one: its vectors are gone from the cache too


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "not JSON"),
        ('{"data": []}', "did not send 1 embeddings"),
        ('{"data": [{"index": "0", "embedding": [1.0]}]}', "numbered its embeddings wrongly"),
        ('{"data": [{"index": 0, "embedding": ["x"]}]}', "not numbers"),
        ('{"data": [{"index": 0, "embedding": []}]}', "not a list of numbers"),
    ],
)
def test_a_malformed_answer_is_a_failed_embedding_not_a_crash(embeddings, body, reason):
    control(embeddings, body=body)
    document = add(collection_create(tenant=new_tenant(), name="Office"), "fleet.md", FLEET)
    assert document.status == "ready" and document.embedding_status == "failed"
    assert reason in document.embedding_reason
