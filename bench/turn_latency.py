"""Accept latency, accept → first delta at an SSE client, and a bare Celery round trip, in one run.

Starts the real processes (uvicorn, a Celery worker, celery-beat and the stub
OpenAI-compatible server answering with zero latency) on whatever
DATABASE_URL / REDIS_URL / CELERY_BROKER_URL say, under a Redis key prefix of
its own, and measures from this process as a client would:

- the round trip of ``soma.noop`` (results enabled) on the same broker:
  ``send_task(...).get()``, one at a time;
- accept → first delta: a client holds an SSE stream open on its session,
  POSTs a message and waits for the first ``assistant.delta`` (and the final)
  before sending the next; timed from sending the POST, and from its 202;
- accept latency: 1 client, then 32 concurrent clients (closed loop, keep-alive
  connections), each message to a new session.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import httpx

from bench.common import Row, Table, bench_environment, noop_round_trips_ms, quiet_client_logs

CONCURRENCY = 32


def _setup_django() -> None:
    bench_environment()
    os.environ["SOMA_REDIS_PREFIX"] = f"bench{uuid.uuid4().hex[:8]}:"
    import django

    django.setup()
    quiet_client_logs()


def _migrate() -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        check=True,
        env=os.environ.copy(),
    )


class SseReader(threading.Thread):
    """Follows one session's stream and timestamps every event as it arrives."""

    def __init__(self, url: str, key: str, session_id: str, after: int) -> None:
        super().__init__(daemon=True)
        self.url = f"{url}/v1/sessions/{session_id}/stream"
        self.headers = {"Authorization": f"Bearer {key}"}
        self.after = after
        self.events: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self.ready = threading.Event()
        self.stop = False

    def run(self) -> None:
        try:
            with httpx.stream(
                "GET", self.url, params={"after": self.after}, headers=self.headers, timeout=httpx.Timeout(60)
            ) as response:
                self.ready.set()
                for line in response.iter_lines():
                    if self.stop:
                        return
                    if line.startswith("data:"):
                        self.events.put((time.perf_counter(), json.loads(line[5:])))
        except httpx.HTTPError:
            if not self.stop:  # the server going away at the end of the run is expected
                raise

    def next_of(self, types: set[str], timeout: float = 30) -> tuple[float, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            at, event = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            if event["type"] in types:
                return at, event


def _forget_earlier_runs() -> None:
    """Delete what earlier runs left: their queued turns would otherwise run during this one."""
    from conversations.models import Turn
    from somaagent.models import OutboxMessage, Tenant

    tenants = Tenant.objects.filter(name__startswith="bench")
    turn_ids = {str(pk) for pk in Turn.objects.filter(tenant__in=tenants).values_list("pk", flat=True)}
    pending = OutboxMessage.objects.filter(topic="conversation.turn", published_at__isnull=True)
    OutboxMessage.objects.filter(
        pk__in=[m.pk for m in pending if m.payload.get("turn_id") in turn_ids]
    ).delete()
    tenants.delete()


def _drop_redis_keys() -> None:
    """This run's queues, stream buffers and results (its own key prefix)."""
    from django.conf import settings

    from somaagent.redis_client import sync_redis

    client = sync_redis()
    for key in client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}*", count=1000):
        client.delete(key)


def _first_delta(url: str, key: str, n: int) -> tuple[list[float], list[float]]:
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    first = client.post("/v1/session/message", json={"message": "hello [[tokens=5]]"}).json()
    sid = first["session_id"]
    reader = SseReader(url, key, sid, after=0)
    reader.start()
    reader.ready.wait(10)
    reader.next_of({"assistant.final"})
    from_post, from_202 = [], []
    for i in range(n + 10):
        started = time.perf_counter()
        r = client.post("/v1/session/message", json={"message": f"msg {i} [[tokens=5]]", "session_id": sid})
        accepted_at = time.perf_counter()
        assert r.status_code == 202, r.text
        delta_at, _ = reader.next_of({"assistant.delta"})
        reader.next_of({"assistant.final", "assistant.error"})
        if i >= 10:
            from_post.append((delta_at - started) * 1000)
            from_202.append((delta_at - accepted_at) * 1000)
    reader.stop = True
    client.close()
    return from_post, from_202


def _accept_one_client(url: str, key: str, n: int) -> list[float]:
    samples = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        for i in range(n + 10):
            started = time.perf_counter()
            r = client.post("/v1/session/message", json={"message": f"one {i} [[tokens=1]]"})
            assert r.status_code == 202, r.text
            if i >= 10:
                samples.append((time.perf_counter() - started) * 1000)
    return samples


class ConnectionSampler(threading.Thread):
    """Peak number of server connections to the database while a phase runs (PostgreSQL only)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        from django.db import connection

        if connection.vendor != "postgresql":
            return
        while not self.done.wait(0.1):
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
                self.peak = max(self.peak, int(cursor.fetchone()[0]))
        connection.close()


async def _accept_concurrent(
    url: str, key: str, clients: int, per_client: int
) -> tuple[list[float], dict[int, int]]:
    samples: list[float] = []
    failures: dict[int, int] = {}

    async def one_client(c: int) -> None:
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as client:
            for i in range(per_client + 2):
                started = time.perf_counter()
                r = await client.post("/v1/session/message", json={"message": f"c{c} m{i} [[tokens=1]]"})
                if r.status_code != 202:
                    failures[r.status_code] = failures.get(r.status_code, 0) + 1
                elif i >= 2:  # the first requests open connections
                    samples.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(one_client(c) for c in range(clients)))
    return samples, failures


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(*, quick: bool = False) -> list[Table]:
    _setup_django()
    _migrate()
    from somaagent.identity.apikeys import api_key_create, tenant_get_or_create
    from tests.live import LiveSystem, StubServer

    n = 40 if quick else 300
    _forget_earlier_runs()
    _, key = api_key_create(tenant=tenant_get_or_create(name=f"bench-{uuid.uuid4().hex[:8]}"), name="bench")
    stub = StubServer("tests.stubs.llm_server")
    system = LiveSystem(env={"SOMA_LLM_BASE_URL": f"{stub.url}/v1", "SOMA_LLM_MODEL": "stub-model"})
    try:
        system.start()
        noop = noop_round_trips_ms(n)
        from_post, from_202 = _first_delta(system.url, key, n)
        noop_after = noop_round_trips_ms(n)  # the broker's round trip again, after the turns
        assert system.web is not None
        web_pid = system.web.popen.pid
        cpu_before = _cpu_seconds(web_pid)
        one = _accept_one_client(system.url, key, n)
        cpu_one = (_cpu_seconds(web_pid) - cpu_before) * 1000 / (n + 10)
        sampler = ConnectionSampler()
        sampler.start()
        per_client = 10 if quick else 25
        cpu_before, started = _cpu_seconds(web_pid), time.perf_counter()
        many, failures = asyncio.run(_accept_concurrent(system.url, key, CONCURRENCY, per_client))
        elapsed = time.perf_counter() - started
        cpu_many = _cpu_seconds(web_pid) - cpu_before
        sampler.done.set()
    finally:
        system.stop()
        stub.stop()
        _forget_earlier_runs()
        _drop_redis_keys()

    noop_all = noop + noop_after
    noop_row = Row("bare Celery round trip: `soma.noop` send → result", noop_all)
    p50x, p99x = 4 * noop_row.p50, 8 * noop_row.p99
    delta_row = Row(
        "accept (202 received) → first delta at the SSE client",
        from_202,
        f"p50 ≤ {p50x:.1f} (4×), p99 ≤ {p99x:.1f} (8×)",
    )
    table = Table(
        "Turn latency (stub model with zero latency)",
        rows=[
            noop_row,
            delta_row,
            Row("POST sent → first delta (accept included)", from_post),
            Row("accept latency, 1 client", one),
            Row(f"accept latency, {CONCURRENCY} concurrent clients", many, "p99 < 50"),
        ],
    )
    table.notes += [
        f"accept (202) → first delta / Celery round trip: p50 {delta_row.p50 / noop_row.p50:.2f}× "
        f"(target ≤ 4: {'met' if delta_row.p50 <= p50x else 'MISSED'}), "
        f"p99 {delta_row.p99 / noop_row.p99:.2f}× "
        f"(target ≤ 8: {'met' if delta_row.p99 <= p99x else 'MISSED'})",
        f"POST sent → first delta / Celery round trip: p50 {Row('', from_post).p50 / noop_row.p50:.2f}×, "
        f"p99 {Row('', from_post).p99 / noop_row.p99:.2f}×",
        f"accept p99 at {CONCURRENCY} clients: {Row('', many).p99:.1f} ms "
        f"(target < 50: {'met' if Row('', many).p99 < 50 else 'MISSED'})",
        f"{CONCURRENCY} concurrent clients: failed requests by status {failures or 'none'}; peak database "
        f"connections of this database during that phase {sampler.peak or 'n/a (not PostgreSQL)'}",
        f"web process CPU per accept: {cpu_one:.1f} ms (1 client), "
        f"{cpu_many * 1000 / (CONCURRENCY * (per_client + 2)):.1f} ms ({CONCURRENCY} clients); "
        f"{CONCURRENCY} clients: {CONCURRENCY * (per_client + 2) / elapsed:.0f} accepts/s, "
        f"the web process used {cpu_many / elapsed:.2f} of a core",
        "processes: 1 uvicorn, 1 Celery worker (the Procfile's: the thread pool), celery-beat, stub model; "
        "all on the same machine as the client",
    ]
    return [table]
