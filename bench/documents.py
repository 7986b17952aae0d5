"""Documents: ingestion throughput (pages/s) and search latency p50/p99, full text and hybrid.

    python -m bench.documents                          # 10,000 chunks, 200 searches a mode
    python -m bench.documents --chunks 100000 --searches 100
    python -m bench.documents --dimensions 1536 --no-ingest   # the vector pass at a real model's size

Ingestion: a generated PDF of 60 pages (40 lines each) and a Markdown file of the same size,
each ingested by the same service as the worker (``document_ingest``: parser subprocess under
rlimits, chunking, embedding, one transaction of chunks), without embeddings and with the stub
embeddings server (tests/stubs/embeddings_server.py, over real HTTP on this machine); reported
in pages/s and chunks/s.
Search: one collection filled with ``--chunks`` chunks of about 1,000 characters drawn from a
vocabulary of 5,000 made-up words with a skewed (Zipf-like) frequency, each with its vector
(the stub's embedder, computed in this process while filling: the same function the stub
serves). Searched with the turn's own call (``chunk_search``, top 15 as a turn asks for) with
one- and three-word queries of common, middling and rare words: by full text alone (no
``SOMA_EMBEDDINGS_URL``), then hybrid (the stub set: the query embedded over HTTP, the exact
in-process vector pass over every chunk in scope, fusion); then the vector pass alone
(``vector_search``), which is what hybrid adds: with the collection's vectors kept in memory
(every search after the first) and read from the database (the first after a change). The
database is the one in use (DATABASE_URL, else the embedded SQLite).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import subprocess
import sys
import time
import uuid
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench.common import made_up_words, migrated_django_with_own_prefix, percentile, run_header

VOCABULARY = 5000
STUB_MODEL = "stub-embed"
TOP_K = 15


@contextmanager
def stub_embeddings(dimensions: int) -> Iterator[str]:
    """The stub embeddings server as a process of its own; yields its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.stubs.embeddings_server", "--dimensions", str(dimensions)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("PORT "), line
        yield f"http://127.0.0.1:{int(line.split()[1])}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def use_embeddings(url: str) -> None:
    """Search and ingest with this embeddings endpoint ("" for none) from now on."""
    from documents.conf import documents_settings
    from documents.embeddings import embedder

    os.environ["SOMA_EMBEDDINGS_URL"] = url
    os.environ["SOMA_EMBEDDINGS_MODEL"] = STUB_MODEL
    documents_settings.cache_clear()
    embedder.cache_clear()


def _pdf(pages: int, rng: random.Random, words: list[str]) -> bytes:
    from tests.documents.samples import pdf

    return pdf([[" ".join(rng.choices(words[:2000], k=12)) for _ in range(40)] for _ in range(pages)])


def ingestion(rng: random.Random, words: list[str], tenant: Any, *, label: str) -> list[dict[str, Any]]:
    from documents.models import Document
    from documents.services.collections import collection_create, document_upload
    from documents.services.ingest import document_ingest

    collection = collection_create(tenant=tenant, name=f"ingest bench {label}")
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
                "file": f"{name} ({len(data) // 1024} KiB, {pages} pages), {label}",
                "embedding": document.embedding_status,
                "seconds": seconds,
                "pages_s": pages / seconds,
                "chunks_s": document.chunks_count / seconds,
            }
        )
    return rows


def _vector(text: str, dimensions: int) -> bytes:
    from documents.vectors import to_bytes
    from tests.stubs.embeddings_server import embed

    values = embed(text, dimensions)
    norm = math.sqrt(sum(x * x for x in values)) or 1.0
    return to_bytes(array("f", [x / norm for x in values]))


def _fill(chunks: int, dimensions: int, rng: random.Random, words: list[str], tenant: Any) -> Any:
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
                embedding_status="ready",
                embedding_model=STUB_MODEL,
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
                    embedding=_vector(text, dimensions),
                )
            )
            made += 1
            if len(batch) >= 5000:
                Chunk.objects.bulk_create(batch)
                batch = []
    if batch:
        Chunk.objects.bulk_create(batch)
    return collection


def _timed(
    kinds: dict[str, Callable[[], list[str]]], runs: int, call: Callable[[str], int]
) -> list[dict[str, Any]]:
    rows = []
    for name, pick in kinds.items():
        samples, found = [], []
        for _ in range(runs):
            query = " ".join(pick())
            started = time.perf_counter()
            found.append(call(query))
            samples.append((time.perf_counter() - started) * 1000)
        rows.append(
            {"query": name, "p50": percentile(samples, 50), "p99": percentile(samples, 99), "hits": found}
        )
    return rows


def search(
    args: argparse.Namespace, stub_url: str, rng: random.Random, words: list[str], tenant: Any
) -> dict[str, list[dict[str, Any]]]:
    from django.db import connection

    from documents.embeddings import embedder
    from documents.search import CANDIDATES, chunk_search
    from documents.vectors import CACHE, vector_search

    began = time.perf_counter()
    collection = _fill(args.chunks, args.dimensions, rng, words, tenant)
    filled = time.perf_counter() - began
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE document_chunks, documents, document_collections")
    size = f"{args.chunks:,} chunks ({args.dimensions} dimensions)"
    print(f"- {size} stored in {filled:.0f} s ({connection.vendor})")
    kinds = {
        "1 common word": lambda: [rng.choice(words[:20])],
        "1 middling word": lambda: [rng.choice(words[200:1000])],
        "1 rare word": lambda: [rng.choice(words[3000:])],
        "3 words (question-like)": lambda: [rng.choice(words[:20]), *rng.sample(words[200:3000], 2)],
    }
    runs = max(1, args.searches // len(kinds))

    def searched(query: str) -> int:
        hits = chunk_search(
            tenant_id=tenant.pk, collection_ids=[collection.pk], text=query, top_k=TOP_K, timeout=60
        )
        return len(hits)

    results: dict[str, list[dict[str, Any]]] = {}
    use_embeddings("")
    results["full text"] = _timed(kinds, runs, searched)
    use_embeddings(stub_url)
    results["hybrid"] = _timed(kinds, runs, searched)
    port = embedder()
    assert port is not None

    def vector_pass(*, cold: bool) -> float:
        query = port.embed([" ".join(kinds["3 words (question-like)"]())], timeout=10)[0]
        if cold:
            CACHE.clear()  # as after a change of the collection, or in a fresh process
        started = time.perf_counter()
        vector_search(
            tenant_id=tenant.pk,
            collection_ids=[collection.pk],
            query=query,
            model=STUB_MODEL,
            top_k=TOP_K * CANDIDATES,
            min_similarity=-1.0,
            timeout=60,
        )
        return (time.perf_counter() - started) * 1000

    cold_ms = [vector_pass(cold=True) for _ in range(3)]
    vector_ms = [vector_pass(cold=False) for _ in range(runs)]
    results["vector pass alone"] = [
        {
            "query": "3 words, vectors kept in memory",
            "p50": percentile(vector_ms, 50),
            "p99": percentile(vector_ms, 99),
            "hits": [TOP_K * CANDIDATES],
        },
        {
            "query": "3 words, vectors read from the database (3 runs)",
            "p50": percentile(cold_ms, 50),
            "p99": max(cold_ms),
            "hits": [TOP_K * CANDIDATES],
        },
    ]
    use_embeddings("")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--searches", type=int, default=200, help="per mode (full text, hybrid)")
    parser.add_argument("--dimensions", type=int, default=256, help="of the stub's vectors")
    parser.add_argument("--no-ingest", action="store_true", help="search only")
    args = parser.parse_args()
    migrated_django_with_own_prefix()
    from somaagent.identity.apikeys import tenant_get_or_create

    print(run_header("bench.documents"))
    rng = random.Random(7)
    words = made_up_words(rng, VOCABULARY)
    tenant = tenant_get_or_create(name=f"documents-bench-{uuid.uuid4().hex[:8]}")
    ingest_rows: list[dict[str, Any]] = []
    try:
        with stub_embeddings(args.dimensions) as stub_url:
            if not args.no_ingest:
                use_embeddings("")
                ingest_rows += ingestion(rng, words, tenant, label="full text only")
                use_embeddings(stub_url)
                ingest_rows += ingestion(rng, words, tenant, label="with embeddings")
            search_rows = search(args, stub_url, rng, words, tenant)
    finally:
        use_embeddings("")
        tenant.delete()  # the bench's collections, documents and chunks with it
    if ingest_rows:
        print()
        print("| ingested file | embedding | seconds | pages/s | chunks/s |")
        print("| --- | --- | ---: | ---: | ---: |")
        for r in ingest_rows:
            rate = f"{r['seconds']:.2f} | {r['pages_s']:.1f} | {r['chunks_s']:.1f}"
            print(f"| {r['file']} | {r['embedding']} | {rate} |")
    print()
    print(f"| query at {args.chunks:,} chunks | mode | p50 | p99 | results (mean) |")
    print("| --- | --- | ---: | ---: | ---: |")
    for mode, rows in search_rows.items():
        for r in rows:
            mean = sum(r["hits"]) / len(r["hits"])
            print(f"| {r['query']} | {mode} | {r['p50']:.1f} ms | {r['p99']:.1f} ms | {mean:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
