"""Benchmark: embedded memory recall latency and write delivery throughput on the configured database.

Run: ``python -m bench.memory_recall [--items 5000] [--queries 200] [--writes 500]``
(``DATABASE_URL`` picks PostgreSQL; unset = SQLite in var/). It creates a
throw-away tenant, measures, and deletes the tenant with everything it made.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid

from bench.common import bench_environment, quiet_client_logs

bench_environment()

import django  # noqa: E402

django.setup()
quiet_client_logs()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from memory.adapters.embedded import EmbeddedMemory  # noqa: E402
from memory.models import MemoryItem, MemoryWrite  # noqa: E402
from memory.port import RecallQuery  # noqa: E402
from memory.services.delivery import claim_head, memory_deliver  # noqa: E402
from memory.services.writes import remember_write  # noqa: E402
from somaagent.models import Tenant  # noqa: E402

_VOCABULARY = (
    "apple river mountain coffee garden bicycle violin teacher kitchen winter summer ocean forest "
    "holiday passport meeting budget invoice printer laptop password doctor birthday recipe museum "
    "train airport hotel concert football painting novel camera battery sofa window lemon pepper"
)
WORDS = _VOCABULARY.split()


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 18)))


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--writes", type=int, default=500)
    args = parser.parse_args()
    rng = random.Random(7)
    call_command("migrate", verbosity=0)
    tenant = Tenant.objects.create(name=f"bench-{uuid.uuid4().hex[:8]}")
    try:
        namespace = "persona:default"
        MemoryItem.objects.bulk_create(
            [
                MemoryItem(
                    key=f"bench:{uuid.uuid4()}", tenant=tenant, namespace=namespace, text=sentence(rng)
                )
                for _ in range(args.items)
            ],
            batch_size=1000,
        )
        store = EmbeddedMemory()
        latencies = []
        for _ in range(args.queries):
            query = f"what about the {rng.choice(WORDS)} and {rng.choice(WORDS)}?"
            started = time.perf_counter()
            store.recall(
                RecallQuery(tenant=str(tenant.pk), namespace=namespace, query=query, top_k=5, timeout=5)
            )
            latencies.append((time.perf_counter() - started) * 1000)
        print(
            f"{connection.vendor}: recall over {args.items} items, {args.queries} queries: "
            f"p50 {statistics.median(latencies):.2f} ms, p95 {pct(latencies, 0.95):.2f} ms, "
            f"max {max(latencies):.2f} ms"
        )

        session_id = uuid.uuid4()
        # Stored directly: the service would also queue a delivery task after commit.
        MemoryWrite.objects.bulk_create(
            [
                remember_write(
                    tenant_id=tenant.pk,
                    session_id=session_id,
                    persona_id=None,
                    namespace=namespace,
                    event_id=uuid.uuid4(),
                    role="user",
                    text=sentence(rng),
                    occurred_at=timezone.now(),
                )
                for _ in range(args.writes)
            ],
            batch_size=500,
        )
        started = time.perf_counter()
        delivered = 0
        claim = claim_head(tenant_id=tenant.pk, session_id=session_id)
        while claim is not None:
            result = memory_deliver(write_id=claim.write_id, token=claim.token, port=store)
            delivered += result.delivered
            claim = result.next_claim
        seconds = time.perf_counter() - started
        print(
            f"{connection.vendor}: delivered {delivered} writes of one session "
            f"(embedded adapter, WAL included) "
            f"in {seconds:.2f} s: {delivered / seconds:.0f} writes/s"
        )
    finally:
        tenant.delete()


if __name__ == "__main__":
    main()
