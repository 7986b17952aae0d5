"""Many conversations at once: N users each send one message at the same moment to a slow model.

    python -m bench.concurrency                 # 10, 100, 300 and 1000 concurrent turns
    python -m bench.concurrency 100 --reply 5   # one size; the stub's reply lasts 5 s

Starts the real processes as the Procfile runs them (uvicorn, the Celery worker
with its shipped defaults, celery-beat) and the stub OpenAI-compatible model,
which streams 20 tokens 250 ms apart (a 5 s reply). Eight short turns warm the
system up first, as a deployment that has served before is (``--cold``: none, a
burst on processes that have just started). N clients, all started at
once, each POST a message to a new session and follow its SSE stream until
the turn's terminal event. Reported per size: wall time from the first send
to the last complete reply (against one reply), first delta after the send
(p50/p95), every turn ending exactly once with the whole reply, the most
streams the stub model had open at once, the peak resident memory of the web process and of the
worker's process tree, the peak number of PostgreSQL connections to the
database, and the worker's CPU per turn. A send or stream answered 503 or 429
is sent again after its ``Retry-After``, with the same ``Idempotency-Key``, as a
well-behaved client would; how many were is reported under the table.

The clients are raw asyncio sockets so that the load generator costs far less
CPU than the system it measures (it runs on the same machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.common import bench_environment, percentile, quiet_client_logs, run_header

TOKENS = 20
WARM_UP = 8  # short turns sent before the burst, unless --cold
RETRIED = (429, 503)
MAX_TRIES = 10


@dataclass
class UserResult:
    sent_at: float = 0.0
    accepted_at: float | None = None
    first_delta_at: float | None = None
    ended_at: float | None = None
    terminal: list[str] = field(default_factory=list)
    text: str = ""
    error: str = ""
    retries: int = 0  # requests answered 503/429 and sent again after Retry-After


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: str, body: bytes = b""
) -> tuple[int, dict[str, str]]:
    writer.write(head.encode() + b"\r\n" + body)
    await writer.drain()
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return int(lines[0].split(" ", 2)[1]), headers


async def _chunks(reader: asyncio.StreamReader) -> Any:
    """The pieces of a chunked HTTP body as they arrive."""
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip() or b"0", 16)
        if size == 0:
            return
        data = await reader.readexactly(size + 2)
        yield data[:-2]


async def _user(
    url: str, key: str, n: int, start: asyncio.Event, result: UserResult, directives: str
) -> None:
    parts = urlsplit(url)
    host = f"{parts.hostname}:{parts.port}"
    auth = f"Authorization: Bearer {key}\r\nHost: {host}\r\n"
    await start.wait()
    try:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        body = json.dumps({"message": f"user {n} {directives}"}).encode()
        result.sent_at = time.perf_counter()
        # As a well-behaved client: a 503/429 is sent again after its Retry-After, with the
        # same Idempotency-Key, so a retried send can never make a second turn.
        idempotency = f"Idempotency-Key: bench-{uuid.uuid4().hex}\r\n"
        for _ in range(MAX_TRIES):
            status, headers = await _request(
                reader,
                writer,
                f"POST /v1/session/message HTTP/1.1\r\n{auth}{idempotency}"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n",
                body,
            )
            accepted = json.loads(await reader.readexactly(int(headers["content-length"])))
            if status not in RETRIED:
                break
            writer.close()  # the server may close an idle keep-alive connection while we wait
            result.retries += 1
            await asyncio.sleep(float(headers.get("retry-after") or 1))
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        result.accepted_at = time.perf_counter()
        if status != 202:
            result.error = f"HTTP {status}: {accepted}"
            return
        stream_head = (
            f"GET /v1/sessions/{accepted['session_id']}/stream?after=0 HTTP/1.1\r\n{auth}"
            "Accept: text/event-stream\r\n"
        )
        for _ in range(MAX_TRIES):
            status, headers = await _request(reader, writer, stream_head)
            if status not in RETRIED:
                break
            # The refusal may be chunked: a new connection is simpler than draining it.
            writer.close()
            result.retries += 1
            await asyncio.sleep(float(headers.get("retry-after") or 1))
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        if status != 200:
            result.error = f"stream HTTP {status}"
            return
        buffer = b""
        async for piece in _chunks(reader):
            buffer += piece
            while b"\n\n" in buffer:
                frame, buffer = buffer.split(b"\n\n", 1)
                for line in frame.split(b"\n"):
                    if not line.startswith(b"data:"):
                        continue
                    event = json.loads(line[5:])
                    kind = event["type"]
                    if kind == "assistant.delta":
                        if result.first_delta_at is None:
                            result.first_delta_at = time.perf_counter()
                        result.text += event["data"]["text"]
                    elif kind in ("assistant.final", "assistant.error", "assistant.cancelled"):
                        result.terminal.append(kind)
                        result.ended_at = time.perf_counter()
                        if kind == "assistant.final":
                            result.text = event["data"]["message"]
                        writer.close()
                        return
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError, KeyError) as exc:
        result.error = repr(exc)


async def _all_users(
    url: str, key: str, n: int, directives: str = f"[[tokens={TOKENS}]]"
) -> tuple[float, list[UserResult]]:
    start = asyncio.Event()
    results = [UserResult() for _ in range(n)]
    tasks = [asyncio.create_task(_user(url, key, i, start, results[i], directives)) for i in range(n)]
    await asyncio.sleep(0.2)  # every client waiting on the same event
    began = time.perf_counter()
    start.set()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=900)
    return began, results


def _tree_pids(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return pids


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy so far (all cores, /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


class Sampler(threading.Thread):
    """Peak RSS of the worker's tree and of the web process, peak database connections, every 0.2 s."""

    def __init__(self, worker_pid: int, web_pid: int) -> None:
        super().__init__(daemon=True)
        self.worker_pid = worker_pid
        self.web_pid = web_pid
        self.peak_rss_mb = 0.0
        self.peak_web_rss_mb = 0.0
        self.peak_connections = 0
        self.threads = 0
        self.done = threading.Event()

    def run(self) -> None:
        from django.db import connection

        postgres = connection.vendor == "postgresql"
        while not self.done.wait(0.2):
            pids = _tree_pids(self.worker_pid)
            self.peak_rss_mb = max(self.peak_rss_mb, _rss_mb(pids))
            self.peak_web_rss_mb = max(self.peak_web_rss_mb, _rss_mb([self.web_pid]))
            try:
                self.threads = max(self.threads, len(os.listdir(f"/proc/{self.worker_pid}/task")))
            except OSError:
                pass
            if postgres:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
                    self.peak_connections = max(self.peak_connections, int(cursor.fetchone()[0]))
        connection.close()


def _setup() -> None:
    bench_environment()
    os.environ["SOMA_REDIS_PREFIX"] = f"bench{uuid.uuid4().hex[:8]}:"
    import django

    django.setup()
    quiet_client_logs()
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], check=True)


def _profile(pid: int, path: str, seconds: float) -> subprocess.Popen[bytes]:
    """py-spy samples ``pid`` (threads, idle ones left out) into collapsed stacks at ``path``,
    for ``seconds`` from the send (0: until every turn ended)."""
    duration = ["--duration", str(max(1, round(seconds + 0.2)))] if seconds else []
    return subprocess.Popen(
        [
            os.path.join(os.path.dirname(sys.executable), "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--output",
            path,
            "--rate",
            "200",
            "--nonblocking",
            "--gil",
            *duration,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def measure(
    size: int, *, reply_seconds: float, profile: str = "", profile_seconds: float = 0, cold: bool = False
) -> dict[str, Any]:
    from bench.turn_latency import _forget_earlier_runs
    from somaagent.identity.apikeys import api_key_create, tenant_get_or_create
    from tests.live import LiveSystem, StubServer

    # An earlier run's turns end just before its worker stops, leaving their memory writes
    # undelivered: this run's worker would deliver them during the burst it measures.
    _forget_earlier_runs()
    _, key = api_key_create(tenant=tenant_get_or_create(name=f"bench-{uuid.uuid4().hex[:8]}"), name="bench")
    stub = StubServer("tests.stubs.llm_server", "--delay", str(reply_seconds / TOKENS))
    system = LiveSystem(env={"SOMA_LLM_BASE_URL": f"{stub.url}/v1", "SOMA_LLM_MODEL": "stub-model"})
    try:
        system.start()
        worker = system.workers[0]
        pids = _tree_pids(worker.popen.pid)
        if not cold:
            # A system that has served before: connections, pools and producers are open, as
            # they are in a running deployment (a fresh one's first burst also pays for them).
            _, warm = asyncio.run(_all_users(system.url, key, WARM_UP, "[[tokens=2]] [[delay=0]]"))
            assert all(r.terminal == ["assistant.final"] for r in warm), [r.error for r in warm]
        time.sleep(2)  # let the worker settle (start-up, or the warm-up's titles and memory writes)
        rss_idle = _rss_mb(pids)
        httpx.delete(f"{stub.url}/_streams")
        assert system.web is not None
        web_pid = system.web.popen.pid
        sampler = Sampler(worker.popen.pid, web_pid)
        sampler.start()
        cpu_before = _cpu_seconds(_tree_pids(worker.popen.pid))
        web_before, busy_before = _cpu_seconds([web_pid]), _machine_busy_seconds()
        profilers = []
        if profile:
            profilers = [
                _profile(worker.popen.pid, f"{profile}-worker-{size}.txt", profile_seconds),
                _profile(system.web.popen.pid, f"{profile}-web-{size}.txt", profile_seconds),
            ]
        began, results = asyncio.run(_all_users(system.url, key, size))
        for profiler in profilers:
            profiler.send_signal(2)
            profiler.wait(timeout=60)
        cpu = _cpu_seconds(_tree_pids(worker.popen.pid)) - cpu_before
        web_cpu = _cpu_seconds([web_pid]) - web_before
        busy = _machine_busy_seconds() - busy_before
        sampler.done.set()
        sampler.join()
        streams = httpx.get(f"{stub.url}/_streams").json()
    finally:
        system.stop()
        stub.stop()
    expected = "".join(f"t{i} " for i in range(TOKENS))
    ended = [r.ended_at for r in results if r.ended_at is not None]
    complete = [r for r in results if r.terminal == ["assistant.final"] and r.text == expected]
    firsts = [r.first_delta_at - r.sent_at for r in results if r.first_delta_at is not None]
    accepts = [r.accepted_at - r.sent_at for r in results if r.accepted_at is not None]
    lasts = [r.ended_at - r.sent_at for r in results if r.ended_at is not None]
    wall = max(ended, default=time.perf_counter()) - began
    errors = [r.error or str(r.terminal) for r in results if r not in complete]
    return {
        "size": size,
        "wall_s": wall,
        "wall_x": wall / reply_seconds,
        "first_p50_s": percentile(firsts, 50),
        "first_p95_s": percentile(firsts, 95),
        "accept_p50_s": percentile(accepts, 50),
        "accept_p95_s": percentile(accepts, 95),
        "end_p50_s": percentile(lasts, 50),
        "end_p95_s": percentile(lasts, 95),
        "end_spread": sorted(round(x, 1) for x in lasts)[:: max(1, len(lasts) // 20)],
        "complete": len(complete),
        "retries": sum(r.retries for r in results),
        "retried_users": sum(1 for r in results if r.retries),
        "errors": errors[:3],
        "max_open_streams": streams["max_open"],
        "rss_idle_mb": rss_idle,
        "rss_peak_mb": sampler.peak_rss_mb,
        "web_rss_peak_mb": sampler.peak_web_rss_mb,
        "threads_peak": sampler.threads,
        "pg_connections_peak": sampler.peak_connections,
        "cpu_ms_per_turn": cpu * 1000 / size,
        "web_cpu_ms_per_turn": web_cpu * 1000 / size,
        "machine_cpu_ms_per_turn": busy * 1000 / size,
    }


def table(rows: list[dict[str, Any]], reply_seconds: float) -> str:
    lines = [
        f"### Concurrent turns, stub model streaming a {reply_seconds:g} s reply ({TOKENS} tokens)",
        "",
        "| turns | all complete after | × one reply | 202 p50 / p95 | first delta p50 / p95 "
        "| complete, exactly once | most model streams open at once | worker RSS idle → peak "
        "| web RSS peak | worker threads peak | PostgreSQL connections peak "
        "| CPU per turn: worker / web / machine |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']} | {r['wall_s']:.1f} s | {r['wall_x']:.2f}× | "
            f"{r['accept_p50_s'] * 1000:.0f} / {r['accept_p95_s'] * 1000:.0f} ms | "
            f"{r['first_p50_s'] * 1000:.0f} / {r['first_p95_s'] * 1000:.0f} ms | "
            f"{r['complete']}/{r['size']} | {r['max_open_streams']} | "
            f"{r['rss_idle_mb']:.0f} → {r['rss_peak_mb']:.0f} MB | {r['web_rss_peak_mb']:.0f} MB | "
            f"{r['threads_peak']} | "
            f"{r['pg_connections_peak'] or 'n/a'} | {r['cpu_ms_per_turn']:.0f} / "
            f"{r['web_cpu_ms_per_turn']:.0f} / {r['machine_cpu_ms_per_turn']:.0f} ms |"
        )
    lines += [
        f"- {r['size']} turns: {r['retried_users']} users were answered 503/429 and sent again after "
        f"Retry-After ({r['retries']} requests sent again; same Idempotency-Key)"
        for r in rows
        if r.get("retries")
    ]
    failures = [f"{r['size']}: {r['errors']}" for r in rows if r["errors"]]
    if failures:
        lines += ["", *(f"- incomplete turns, first reasons: {f}" for f in failures)]
    lines += [
        "",
        "- targets: 100 turns complete within 2× one reply, first delta p95 ≤ 1 s, worker tree ≤ 300 MB",
        "- PostgreSQL connections: every connection to the database, all processes (web, worker, beat, "
        "this client's sampler)",
        "- CPU per turn: the worker's process tree, the web process, and the whole machine (every "
        "process: PostgreSQL, Redis, the stub model and this client included) while the turns ran",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sizes", nargs="*", type=int, default=[10, 100, 300, 1000])
    parser.add_argument("--reply", type=float, default=5.0, help="seconds the stub takes for one reply")
    parser.add_argument(
        "--cold", action="store_true", help=f"no warm-up ({WARM_UP} short turns) before the burst"
    )
    parser.add_argument(
        "--profile", default="", help="py-spy the worker and web into PREFIX-{worker,web}-N.txt"
    )
    parser.add_argument(
        "--profile-seconds",
        type=float,
        default=0,
        help="profile only this many seconds from the send (e.g. the burst before the first deltas)",
    )
    args = parser.parse_args()
    _setup()
    print(run_header("bench.concurrency"))
    print(f"- before each burst: {'nothing (--cold)' if args.cold else f'{WARM_UP} short turns (warm-up)'}")
    for var in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
        print(f"- {var}: {os.environ.get(var) or '(unset: embedded default)'}")
    rows = []
    for size in args.sizes:
        rows.append(
            measure(
                size,
                reply_seconds=args.reply,
                profile=args.profile,
                profile_seconds=args.profile_seconds,
                cold=args.cold,
            )
        )
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print()
    print(table(rows, args.reply))
    return 0


if __name__ == "__main__":
    sys.exit(main())
