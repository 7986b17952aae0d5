"""The CPU a web process spends to follow live streams: per event, in the event loop's thread.

    python -m bench.follow_cost                       # 100 sessions, 20 deltas each, 2 ms apart
    python -m bench.follow_cost --sessions 300 --rounds 10 --gap 0

N ``SessionFollower``s (the reader behind SSE, the WebSocket and the OpenAI door)
follow N sessions live in one event loop, as one web process does; a thread
publishes one delta per session per round to the Redis stream buffer, ``--gap``
seconds apart (a model streaming 4 tokens/s to 100 sessions is 2.5 ms apart).
Reported: the event loop thread's CPU per delivered event (the publisher's
thread is not counted) and the Redis connections the loop's pool holds while
the followers wait. Uses DATABASE_URL / REDIS_URL like the app.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import threading
import time
import uuid
from typing import Any

from bench.common import bench_environment


def _setup() -> None:
    bench_environment()
    os.environ["SOMA_REDIS_PREFIX"] = f"benchfollow{uuid.uuid4().hex[:6]}:"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


async def _measure(sessions: list[Any], rounds: int, gap: float) -> dict[str, float]:
    from django.utils import timezone

    from conversations import stream_buffer
    from conversations.envelope import make_envelope
    from conversations.models import EventType
    from conversations.streaming import HEARTBEAT, SessionFollower
    from somaagent.redis_client import async_redis

    async def consume(it: Any) -> int:
        n = 0
        async for envelope in it:
            if envelope is not HEARTBEAT:
                n += 1
                if n == rounds:
                    return n
        return n

    its: list[Any] = [SessionFollower(s.pk, 0, heartbeat=30).__aiter__() for s in sessions]
    tasks = [asyncio.create_task(consume(it)) for it in its]
    await asyncio.sleep(1.0)  # every follower past its replay, waiting live
    pool: Any = async_redis().connection_pool
    held = len(pool._in_use_connections)

    def publish() -> None:
        for r in range(1, rounds + 1):
            for s in sessions:
                stream_buffer.publish(
                    make_envelope(
                        seq=r,
                        event_id=uuid.uuid4(),
                        session_id=str(s.pk),
                        type=EventType.ASSISTANT_DELTA,
                        role="assistant",
                        occurred_at=timezone.now(),
                        data={"text": f"t{r} ", "index": r},
                    )
                )
                if gap:
                    time.sleep(gap)

    publisher = threading.Thread(target=publish)
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    publisher.start()
    delivered = sum(await asyncio.gather(*tasks))
    cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
    publisher.join()
    for it in its:
        await it.aclose()
    return {"events": delivered, "cpu_ms_per_event": 1000 * cpu / delivered, "wall_s": wall, "held": held}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--gap", type=float, default=0.002, help="seconds between two published deltas")
    args = parser.parse_args()
    _setup()
    from conversations.models import Session
    from somaagent.identity.apikeys import tenant_get_or_create

    tenant = tenant_get_or_create(name=f"bench-follow-{uuid.uuid4().hex[:8]}")
    sessions = [Session.objects.create(tenant=tenant) for _ in range(args.sessions)]
    try:
        result = asyncio.run(_measure(sessions, args.rounds, args.gap))
    finally:
        tenant.delete()
    columns = ["sessions", "deltas each", "gap", "events delivered", "loop CPU per event"]
    columns.append("Redis connections held while waiting")
    print("| " + " | ".join(columns) + " |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {args.sessions} | {args.rounds} | {args.gap * 1000:g} ms | {result['events']:.0f} "
        f"| {result['cpu_ms_per_event']:.3f} ms | {result['held']:.0f} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
