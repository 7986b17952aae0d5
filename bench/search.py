"""Searching your conversations at 100,000 messages: latency p50/p99 of ``GET /v1/search``'s query.

    python -m bench.search                     # 100,000 messages in 2,000 chats, 300 searches
    python -m bench.search --messages 10000 --searches 100

One tenant's chats, half user messages and half replies, each 8 to 40 words drawn from a
vocabulary of 5,000 made-up words with a skewed (Zipf-like) frequency, so a query word may
match a handful of messages or tens of thousands. The searches call the same function as the
API (``conversation_search``: ranking, snippets and highlights included), first page and
third page, with one- and two-word queries of common, middling and rare words. Reported per
kind of query: p50/p99 in ms and how many results the first page had.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from typing import Any

from bench.common import made_up_words, migrated_django_with_own_prefix, percentile, run_header

VOCABULARY = 5000


def _fill(messages: int, rng: random.Random, words: list[str]) -> Any:
    from conversations.models import EventType, Session, SessionEvent
    from somaagent.identity.apikeys import api_key_create, tenant_get_or_create

    tenant = tenant_get_or_create(name=f"search-bench-{uuid.uuid4().hex[:8]}")
    key, _ = api_key_create(tenant=tenant, name="bench")
    weights = [1 / (i + 1) for i in range(len(words))]
    per_chat = 50
    chats = max(1, messages // per_chat)
    sessions = Session.objects.bulk_create(
        [Session(tenant=tenant, title=f"chat {i}", last_seq=per_chat) for i in range(chats)]
    )
    batch: list[SessionEvent] = []
    for session in sessions:
        for seq in range(1, per_chat + 1):
            text = " ".join(rng.choices(words, weights=weights, k=rng.randint(8, 40)))
            kind = EventType.USER_MESSAGE if seq % 2 else EventType.ASSISTANT_FINAL
            batch.append(
                SessionEvent(
                    session=session,
                    seq=seq,
                    type=kind,
                    role="user" if seq % 2 else "assistant",
                    payload={"message": text},
                )
            )
            if len(batch) >= 5000:
                SessionEvent.objects.bulk_create(batch)
                batch = []
    if batch:
        SessionEvent.objects.bulk_create(batch)
    return key


def measure(messages: int, searches: int) -> list[dict[str, Any]]:
    from django.db import connection

    from conversations.services.search import conversation_search
    from somaagent.identity.principal import principal_for_key

    rng = random.Random(7)
    words = made_up_words(rng, VOCABULARY)
    began = time.perf_counter()
    key = _fill(messages, rng, words)
    filled = time.perf_counter() - began
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE sessions, session_events")  # as autovacuum would after a bulk load
    principal = principal_for_key(key)
    kinds = {
        "1 common word": lambda: [rng.choice(words[:20])],
        "1 middling word": lambda: [rng.choice(words[200:1000])],
        "1 rare word": lambda: [rng.choice(words[3000:])],
        "2 words (common + middling)": lambda: [rng.choice(words[:20]), rng.choice(words[200:1000])],
    }
    rows = []
    for name, pick in kinds.items():
        for offset in (0, 40):
            samples, found = [], []
            for _ in range(searches // len(kinds)):
                query = " ".join(pick())
                started = time.perf_counter()
                hits = conversation_search(principal=principal, query=query, limit=20, offset=offset)
                samples.append((time.perf_counter() - started) * 1000)
                found.append(len(hits))
            rows.append(
                {
                    "query": name,
                    "page": 1 + offset // 20,
                    "p50": percentile(samples, 50),
                    "p99": percentile(samples, 99),
                    "hits": sum(found) / len(found),
                }
            )
    print(f"- {messages:,} messages stored in {filled:.0f} s ({connection.vendor})")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--searches", type=int, default=300)
    args = parser.parse_args()
    migrated_django_with_own_prefix()
    print(run_header("bench.search"))
    rows = measure(args.messages, args.searches)
    print()
    print("| query | page | p50 | p99 | results on the page (mean) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['query']} | {r['page']} | {r['p50']:.1f} ms | {r['p99']:.1f} ms | {r['hits']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
