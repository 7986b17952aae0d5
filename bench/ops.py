"""Operations benchmarks (issue 8): accept vs a bare view, streaming, 200 SSE clients,
worker turn throughput vs no-op tasks, cost against session length, peak RSS.

``python -m bench.ops [--quick]`` prints a JSON document and a Markdown summary
(``BENCHMARKS.md`` holds the numbers of a run). Real processes throughout: a
uvicorn web process, a Celery worker, the stub model at zero latency, and the
load generator in a process of its own.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import httpx

from bench import ops_support as s
from bench.common import noop_round_trips_ms

CONCURRENCIES = (1, 8, 32)


def accept_vs_bare(seconds: float) -> dict[str, Any]:
    """Throughput and latency of POST /v1/session/message next to GET /healthz, same server."""
    live = s.system()
    live.start_web()
    key = s.api_key()
    rows = []
    try:
        for c in CONCURRENCIES:
            bare = s.loadgen({"url": f"{live.url}/healthz", "concurrency": c, "seconds": seconds})
            accept = s.loadgen(
                {
                    "url": f"{live.url}/v1/session/message",
                    "method": "POST",
                    "headers": {"Authorization": f"Bearer {key}"},
                    "body": {"message": "benchmark message {n}"},
                    "concurrency": c,
                    "seconds": seconds,
                }
            )
            rows.append(
                {
                    "concurrency": c,
                    "bare": bare,
                    "accept": accept,
                    "ratio": round(accept["rps"] / bare["rps"], 3),
                }
            )
    finally:
        live.stop()
    return {"rows": rows}


def _follow(live: Any, key: str, sid: str, after: int) -> dict[str, Any]:
    from tests.live import iter_sse

    first = None
    deltas = 0
    text: list[str] = []
    with httpx.stream(
        "GET",
        f"{live.url}/v1/sessions/{sid}/stream",
        params={"after": after},
        headers={"Authorization": f"Bearer {key}"},
        timeout=120,
    ) as response:
        for event in iter_sse(response):
            if event is None:
                continue
            if event["type"] == "assistant.delta":
                if first is None:
                    first = s.now()
                deltas += 1
                text.append(event["data"]["text"])
            elif event["type"] in ("assistant.final", "assistant.error", "assistant.cancelled"):
                return {
                    "first": first,
                    "end": s.now(),
                    "deltas": deltas,
                    "text": "".join(text),
                    "final": event,
                }
    raise RuntimeError("stream ended early")


def streaming(live: Any, key: str, *, tokens: int, runs: int) -> dict[str, Any]:
    """Accept → first delta at a client, and tokens per second end to end, zero-latency model."""
    samples = []
    expected = "".join(f"t{i} " for i in range(tokens))
    with live.client(key) as c:
        for _ in range(runs):
            started = s.now()
            r = c.post("/v1/session/message", json={"message": f"[[tokens={tokens}]]"})
            accepted = s.now()
            body = r.json()
            after = int(body["stream"]["sse"].rsplit("=", 1)[1])
            got = _follow(live, key, body["session_id"], after)
            lossless = got["text"] == expected == got["final"]["data"]["message"]
            samples.append(
                {
                    "accept_ms": (accepted - started) * 1000,
                    "first_delta_ms": (got["first"] - started) * 1000,
                    "tokens_per_s": tokens / max(1e-9, got["end"] - got["first"]),
                    "deltas": got["deltas"],
                    "lossless": lossless,
                }
            )
    noop = noop_round_trips_ms(30)
    first = s.median([x["first_delta_ms"] for x in samples])
    return {
        "tokens": tokens,
        "runs": samples,
        "median_first_delta_ms": round(first, 1),
        "median_tokens_per_s": round(s.median([x["tokens_per_s"] for x in samples])),
        "median_deltas": s.median([x["deltas"] for x in samples]),
        "all_lossless": all(x["lossless"] for x in samples),
        "noop_round_trip_ms": round(s.median(noop), 2),
        "first_delta_over_noop": round(first / s.median(noop), 1),
    }


async def _sse_clients(live: Any, key: str, sessions: list[tuple[str, int]], tokens: int) -> dict[str, Any]:
    connected = asyncio.Event()
    ready = 0
    results: list[dict[str, Any]] = []
    limits = httpx.Limits(max_connections=len(sessions) + 20, max_keepalive_connections=len(sessions) + 20)
    async with httpx.AsyncClient(base_url=live.url, timeout=180, limits=limits) as client:

        async def one(sid: str, after: int) -> None:
            nonlocal ready
            headers = {"Authorization": f"Bearer {key}"}
            async with client.stream("GET", f"/v1/sessions/{sid}/stream?after={after}", headers=headers) as r:
                lines = r.aiter_lines()
                async for line in lines:
                    if line.startswith(": connected"):
                        break
                ready += 1
                if ready == len(sessions):
                    connected.set()
                text, data, started = [], [], s.now()
                async for line in lines:
                    if line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif line == "" and data:
                        event = json.loads("\n".join(data))
                        data = []
                        if event["type"] == "assistant.delta":
                            text.append(event["data"]["text"])
                        elif event["type"] == "assistant.final":
                            results.append(
                                {
                                    "ok": "".join(text) == event["data"]["message"],
                                    "seconds": s.now() - started,
                                }
                            )
                            return
                        elif event["type"] in ("assistant.error", "assistant.cancelled"):
                            results.append({"ok": False, "seconds": s.now() - started})
                            return

        tasks = [asyncio.create_task(one(sid, after)) for sid, after in sessions]
        await asyncio.wait_for(connected.wait(), 120)
        headers = {"Authorization": f"Bearer {key}"}
        started = s.now()
        for sid, _ in sessions:
            r = await client.post(
                "/v1/session/message",
                json={"session_id": sid, "message": f"[[tokens={tokens}]] [[delay=0.002]]"},
                headers=headers,
            )
            assert r.status_code == 202, r.text
        await asyncio.wait_for(asyncio.gather(*tasks), 600)
        elapsed = s.now() - started
    return {
        "clients": len(sessions),
        "complete_and_exact": sum(1 for r in results if r["ok"]),
        "all_replies_seconds": round(elapsed, 1),
        "median_client_seconds": round(s.median([r["seconds"] for r in results]), 2),
    }


def many_sse(live: Any, key: str, *, clients: int, tokens: int) -> dict[str, Any]:
    """``clients`` concurrent SSE streams on one web process, every one with a live reply."""
    from conversations.models import Session, Turn

    with live.client(key) as c:
        sids = [
            c.post("/v1/session/message", json={"message": "[[tokens=1]]"}).json()["session_id"]
            for _ in range(clients)
        ]
    deadline = time.monotonic() + 300
    while Turn.objects.filter(session_id__in=sids, status__in=Turn.ACTIVE_STATUSES).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("warm-up turns did not finish")
        time.sleep(0.2)
    cursors = {str(pk): seq for pk, seq in Session.objects.filter(pk__in=sids).values_list("pk", "last_seq")}
    result = asyncio.run(_sse_clients(live, key, [(sid, cursors[sid]) for sid in sids], tokens))
    result["web_peak_rss_mb"] = s.peak_rss_mb(live.web.popen.pid)
    return result


def _wait_turns(turn_ids: list[str], timeout: float = 600) -> None:
    from conversations.models import Turn

    deadline = time.monotonic() + timeout
    while Turn.objects.filter(pk__in=turn_ids, status__in=Turn.ACTIVE_STATUSES).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("turns did not finish")
        time.sleep(0.05)


def worker_throughput(live: Any, key: str, *, n: int, concurrency: int) -> dict[str, Any]:
    """Turns per second of one worker (instant model) vs no-op tasks per second, same concurrency.

    Both measured alike: with no worker running, ``n`` no-op tasks and ``n``
    turns are queued; a worker then drains the no-ops alone, and a new one the
    turns alone. The rate is (n - 1) over the time from the first completion to
    the last (result ``date_done`` for no-ops, ``finished_at`` for turns), so
    neither worker start-up nor the web process is part of either number.
    """
    from concurrent.futures import ThreadPoolExecutor

    from django.db.models import Max, Min

    from conversations.models import Turn
    from somaagent.celery import app

    for worker in live.workers:
        worker.stop()
    live.workers = []
    results = [app.send_task("soma.noop") for _ in range(n)]

    def submit(_: int) -> str:
        with live.client(key) as c:
            return str(c.post("/v1/session/message", json={"message": "[[tokens=5]]"}).json()["turn_id"])

    with ThreadPoolExecutor(8) as pool:
        turn_ids = list(pool.map(submit, range(n)))

    noop_worker = live.start_worker(queues="default")
    for r in results:
        r.get(timeout=300)
    done = sorted(r.date_done for r in results)
    noop_rate = (n - 1) / (done[-1] - done[0]).total_seconds()
    noop_worker.stop()
    live.workers = []

    worker = live.start_worker(queues="conversation")  # the turns alone, not their memory tasks
    _wait_turns(turn_ids)
    span = Turn.objects.filter(pk__in=turn_ids).aggregate(first=Min("finished_at"), last=Max("finished_at"))
    turn_rate = (n - 1) / (span["last"] - span["first"]).total_seconds()
    return {
        "concurrency": concurrency,
        "tasks": n,
        "noop_per_s": round(noop_rate, 1),
        "turns_per_s": round(turn_rate, 1),
        "ratio": round(turn_rate / noop_rate, 3),
        "worker_peak_rss_mb": s.process_tree_peaks(worker.popen.pid),
    }


def _session_with_history(key: str, events: int) -> str:
    from django.db import transaction
    from django.utils import timezone

    from conversations.models import Session, SessionEvent
    from somaagent.identity.apikeys import api_key_authenticate

    api = api_key_authenticate(key)
    assert api is not None
    with transaction.atomic():
        session = Session.objects.create(tenant=api.tenant, title="history")
        rows = []
        for seq in range(1, events + 1):
            user = seq % 2 == 1
            rows.append(
                SessionEvent(
                    session=session,
                    seq=seq,
                    type="user.message" if user else "assistant.final",
                    role="user" if user else "assistant",
                    occurred_at=timezone.now(),
                    payload={"message": f"earlier message {seq}", "attachments": [], "metadata": {}}
                    if user
                    else {"message": f"earlier reply {seq}", "model": "stub-model"},
                )
            )
        SessionEvent.objects.bulk_create(rows, batch_size=2000)
        Session.objects.filter(pk=session.pk).update(last_seq=events)
    from django.db import connection

    # What autovacuum does after a bulk load: without fresh statistics the
    # planner scans the whole session for the history window (measured: 8 ms
    # at 10,000 events instead of 0.1 ms).
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE session_events")
    return str(session.pk)


def history_cost(live: Any, key: str, *, turns: int) -> dict[str, Any]:
    """Cost of one turn in a session of 10 events vs one of 10,000 (alternating, after a warm-up)."""
    from conversations.models import Turn

    sessions = {events: _session_with_history(key, events) for events in (10, 10_000)}
    timings: dict[int, dict[str, list[float]]] = {e: {"worker": [], "end_to_end": []} for e in sessions}
    with live.client(key) as c:
        for i in range(turns + 1):
            for events, sid in sessions.items():
                started = s.now()
                turn_id = c.post(
                    "/v1/session/message", json={"session_id": sid, "message": "[[tokens=5]]"}
                ).json()["turn_id"]
                _wait_turns([turn_id])
                if i == 0:
                    continue  # warm-up round
                timings[events]["end_to_end"].append((s.now() - started) * 1000)
                turn = Turn.objects.get(pk=turn_id)
                assert turn.finished_at and turn.started_at
                timings[events]["worker"].append((turn.finished_at - turn.started_at).total_seconds() * 1000)
    out: dict[str, Any] = {
        str(e): {k: round(s.median(v), 1) for k, v in t.items()} for e, t in timings.items()
    }
    out["ratio_worker"] = round(out["10000"]["worker"] / out["10"]["worker"], 2)
    out["ratio_end_to_end"] = round(out["10000"]["end_to_end"] / out["10"]["end_to_end"], 2)
    return out


def main(argv: list[str]) -> dict[str, Any]:
    quick = "--quick" in argv
    s.django_setup()
    import os

    from tests.live import StubServer

    report: dict[str, Any] = {
        "database": "postgresql" if os.environ.get("DATABASE_URL") else "sqlite",
        "quick": quick,
    }
    report["load_average_at_start"] = os.getloadavg()
    report["accept_vs_bare"] = accept_vs_bare(2.0 if quick else 5.0)
    stub = StubServer("tests.stubs.llm_server")
    concurrency = 2
    live = s.system(
        llm_url=stub.url, concurrency=concurrency, SOMA_REDIS_PREFIX=os.environ["SOMA_REDIS_PREFIX"]
    )
    try:
        live.start_web()
        live.start_worker()
        key = s.api_key()
        report["streaming"] = streaming(live, key, tokens=20_000, runs=3 if quick else 7)
        report["sse_200"] = many_sse(live, key, clients=200, tokens=100)
        report["worker_throughput"] = worker_throughput(
            live, key, n=60 if quick else 300, concurrency=concurrency
        )
        report["history_cost"] = history_cost(live, key, turns=5 if quick else 15)
        report["load_average_at_end"] = os.getloadavg()
        report["peak_rss_mb"] = {
            "web": s.peak_rss_mb(live.web.popen.pid),
            "worker": s.process_tree_peaks(live.workers[0].popen.pid),
        }
    finally:
        live.stop()
        stub.stop()
    return report


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=2))
