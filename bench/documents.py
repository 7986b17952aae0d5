"""Documents: ingestion throughput (pages/s) and search latency p50/p99 at 10,000 chunks.

    python -m bench.documents                          # 10,000 chunks, 200 searches
    python -m bench.documents --chunks 100000 --searches 200

Ingestion: a generated PDF of 60 pages (40 lines each) and a Markdown file of the same text,
each ingested by the same service as the worker (``document_ingest``: parser subprocess
under rlimits, chunking, one transaction of chunks); reported in pages/s and chunks/s.
Search: one collection filled with ``--chunks`` chunks of about 1,000 characters drawn from
a vocabulary of 5,000 made-up words with a skewed (Zipf-like) frequency, searched with the
turn's own query (``chunk_search``, top 15 as a turn asks for) with one- and three-word
queries of common, middling and rare words; the whole turn path (``turn_documents``:
collections, search, dedupe, budget) too. Full-text on the database in use
(DATABASE_URL, else the embedded SQLite).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from typing import Any

from bench.common import machine_description, made_up_words, migrated_django_with_own_prefix, percentile

VOCABULARY = 5000


def _pdf(pages: int, rng: random.Random, words: list[str]) -> bytes:
    from tests.documents.samples import pdf

    return pdf([[" ".join(rng.choices(words[:2000], k=12)) for _ in range(40)] for _ in range(pages)])


def ingestion(rng: random.Random, words: list[str], tenant: Any) -> list[dict[str, Any]]:
    from documents.models import Document
    from documents.services.collections import collection_create, document_upload
    from documents.services.ingest import document_ingest

    collection = collection_create(tenant=tenant, name="ingest bench")
    pages = 60
    content = _pdf(pages, rng, words)
    text = "\n\n".join(f"## Page {p}\n\n" + " ".join(rng.choices(words[:2000], k=480)) for p in range(pages))
    rows = []
    for name, data in (("bench.pdf", content), ("bench.md", text.encode())):
        document, _ = document_upload(
            collection=collection, filename=name, declared_type=None, content=data, max_bytes=10**8
        )
        started = time.perf_counter()
        status = document_ingest(document_id=str(document.pk))
        seconds = time.perf_counter() - started
        document = Document.objects.defer("content").get(pk=document.pk)
        assert status == "ready", document.reason
        rows.append(
            {
                "file": f"{name} ({len(data) // 1024} KiB, {pages} pages)",
                "seconds": seconds,
                "pages_s": pages / seconds,
                "chunks_s": document.chunks_count / seconds,
            }
        )
    return rows


def _fill(chunks: int, rng: random.Random, words: list[str], tenant: Any) -> Any:
    from documents.models import Chunk, Document
    from documents.services.collections import collection_create

    collection = collection_create(tenant=tenant, name="search bench")
    weights = [1 / (i + 1) for i in range(len(words))]
    per_doc = 100
    documents = Document.objects.bulk_create(
        [
            Document(
                tenant=tenant,
                collection=collection,
                filename=f"doc{i}.md",
                content_type="text/markdown",
                sha256=uuid.uuid4().hex * 2,
                size=0,
                content=b"",
                status="ready",
            )
            for i in range(max(1, chunks // per_doc))
        ]
    )
    batch: list[Chunk] = []
    made = 0
    for document in documents:
        for ordinal in range(per_doc):
            if made >= chunks:
                break
            text = " ".join(rng.choices(words, weights=weights, k=150))
            batch.append(
                Chunk(
                    document=document,
                    tenant=tenant,
                    collection=collection,
                    ordinal=ordinal,
                    heading="",
                    page=ordinal // 3 + 1,
                    text=text,
                )
            )
            made += 1
            if len(batch) >= 5000:
                Chunk.objects.bulk_create(batch)
                batch = []
    if batch:
        Chunk.objects.bulk_create(batch)
    return collection


def search(
    chunks: int, searches: int, rng: random.Random, words: list[str], tenant: Any
) -> list[dict[str, Any]]:
    from django.db import connection

    from documents.retrieval import turn_documents
    from documents.search import chunk_search

    began = time.perf_counter()
    collection = _fill(chunks, rng, words, tenant)
    filled = time.perf_counter() - began
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE document_chunks, documents, document_collections")
    print(f"- {chunks:,} chunks stored in {filled:.0f} s ({connection.vendor})")
    kinds = {
        "1 common word": lambda: [rng.choice(words[:20])],
        "1 middling word": lambda: [rng.choice(words[200:1000])],
        "1 rare word": lambda: [rng.choice(words[3000:])],
        "3 words (question-like)": lambda: [rng.choice(words[:20]), *rng.sample(words[200:3000], 2)],
    }
    rows = []
    for name, pick in kinds.items():
        samples, found = [], []
        for _ in range(max(1, searches // (len(kinds) + 1))):
            query = " ".join(pick())
            started = time.perf_counter()
            hits = chunk_search(
                tenant_id=tenant.pk, collection_ids=[collection.pk], text=query, top_k=15, timeout=10
            )
            samples.append((time.perf_counter() - started) * 1000)
            found.append(len(hits))
        rows.append(
            {"query": name, "p50": percentile(samples, 50), "p99": percentile(samples, 99), "hits": found}
        )
    samples, found = [], []
    for _ in range(max(1, searches // (len(kinds) + 1))):
        query = " ".join([rng.choice(words[:20]), *rng.sample(words[200:3000], 2)])
        started = time.perf_counter()
        got = turn_documents(
            tenant_id=tenant.pk, persona_id=None, session_id=uuid.uuid4(), owner_id=None, query=query
        )
        samples.append((time.perf_counter() - started) * 1000)
        found.append(len(got.items))
    rows.append(
        {
            "query": "turn path (turn_documents, 3 words)",
            "p50": percentile(samples, 50),
            "p99": percentile(samples, 99),
            "hits": found,
        }
    )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--searches", type=int, default=200)
    args = parser.parse_args()
    migrated_django_with_own_prefix()
    from somaagent.identity.apikeys import tenant_get_or_create

    print(f"- machine: {machine_description()}")
    print(f"- command: `{' '.join([sys.executable, '-m', 'bench.documents', *sys.argv[1:]])}`")
    rng = random.Random(7)
    words = made_up_words(rng, VOCABULARY)
    tenant = tenant_get_or_create(name=f"documents-bench-{uuid.uuid4().hex[:8]}")
    try:
        ingest_rows = ingestion(rng, words, tenant)
        search_rows = search(args.chunks, args.searches, rng, words, tenant)
    finally:
        tenant.delete()  # the bench's collections, documents and chunks with it
    print()
    print("| ingested file | seconds | pages/s | chunks/s |")
    print("| --- | ---: | ---: | ---: |")
    for r in ingest_rows:
        print(f"| {r['file']} | {r['seconds']:.2f} | {r['pages_s']:.1f} | {r['chunks_s']:.1f} |")
    print()
    print(f"| query at {args.chunks:,} chunks | p50 | p99 | results (mean) |")
    print("| --- | ---: | ---: | ---: |")
    for r in search_rows:
        mean = sum(r["hits"]) / len(r["hits"])
        print(f"| {r['query']} | {r['p50']:.1f} ms | {r['p99']:.1f} ms | {mean:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
