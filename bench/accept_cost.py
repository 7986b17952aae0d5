"""The cost of an accept: POST /v1/session/message next to GET /healthz on the same web process.

    python -m bench.accept_cost [--seconds 5] [--rounds 3] [--concurrency 16] [--quick]
    python -m bench.accept_cost --serial 300     # CPU of one accept, in this process, one at a time

Starts the real web process (uvicorn on ``somaagent.asgi``, as the Procfile
does; no worker: the turns queue up in this run's own Redis prefix and are
deleted after), then alternates, ``--rounds`` times, a run of ``GET /healthz``
and a run of accepts (each to a new session, no Idempotency-Key), each with
``--concurrency`` keep-alive clients of ``bench.loadgen`` in a process of its
own. Reports requests/s, latency, and the web process's CPU per request (user
+ system time from ``/proc``, every thread, divided by the requests of the
run); the ratio accept/healthz is taken within each round. Then counts the SQL
statements and transactions of one accept in this process (Django's test
client, the same view, every thread; the outbox's batched published marks
included, amortised over the batch). Needs DATABASE_URL/REDIS_URL like the app
(default: the embedded ones); PostgreSQL for numbers that mean something.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from bench import ops_support as s
from bench.common import machine_description


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run(url: str, pid: int, spec: dict[str, Any]) -> dict[str, Any]:
    before = _cpu_seconds(pid)
    result = s.loadgen({"url": url, "warmup": 0, **spec})
    cpu = _cpu_seconds(pid) - before
    result["cpu_ms_per_request"] = round(cpu * 1000 / max(1, result["requests"]), 2)
    return result


def throughput(*, key: str, seconds: float, rounds: int, concurrency: int) -> list[dict[str, Any]]:
    from tests.live import LiveSystem

    live = LiveSystem(env={"SOMA_REDIS_PREFIX": os.environ["SOMA_REDIS_PREFIX"]})
    live.start_web()
    assert live.web is not None
    pid = live.web.popen.pid
    healthz = {"concurrency": concurrency, "seconds": seconds}
    accept = {
        **healthz,
        "method": "POST",
        "headers": {"Authorization": f"Bearer {key}"},
        "body": {"message": "benchmark message {n}"},
    }
    rows = []
    try:
        s.loadgen({"url": f"{live.url}/healthz", **healthz, "seconds": 2})  # warm both paths up
        s.loadgen({"url": f"{live.url}/v1/session/message", **accept, "seconds": 2})
        for _ in range(rounds):
            bare = _run(f"{live.url}/healthz", pid, healthz)
            acc = _run(f"{live.url}/v1/session/message", pid, accept)
            rows.append({"healthz": bare, "accept": acc, "ratio": round(acc["rps"] / bare["rps"], 3)})
    finally:
        live.stop()
    return rows


def statements_per_accept(*, key: str, n: int = 20) -> dict[str, float]:
    """Statements and transactions per accept, new sessions and an existing one (its turns done)."""
    from django.test import Client

    from conversations.models import Turn
    from somaagent import outbox
    from tests.statements import statements_on_every_thread

    # Publish and mark what the fast path holds (an older outbox marked each row at once).
    outbox_marks_flush = getattr(outbox, "outbox_marks_flush", lambda: 0)

    client = Client(headers={"Authorization": f"Bearer {key}", "Host": "127.0.0.1"})

    def post(body: dict[str, Any]) -> dict[str, Any]:
        r = client.post("/v1/session/message", json.dumps(body), content_type="application/json")
        assert r.status_code == 202, r.content
        return dict(r.json())

    sid = post({"message": "warm up"})["session_id"]
    out = {}
    for name, body in (("new session", {}), ("existing session", {"session_id": sid})):
        outbox_marks_flush()
        with statements_on_every_thread() as seen:
            for i in range(n):
                Turn.objects.filter(session_id=sid).update(status=Turn.Status.COMPLETED)
                post({"message": f"counted {i}", **body})
            outbox_marks_flush()
        setup = n  # the UPDATE that finishes the previous turn is the benchmark's, not the accept's
        out[f"statements per accept, {name}"] = round((len(seen.sql) - setup) / n, 2)
        out[f"transactions per accept, {name}"] = round((seen.transactions() - setup) / n, 2)
    return out


def _postgres_cpu_seconds(database: str) -> float:
    """User + system CPU so far of the PostgreSQL backends serving ``database`` on this machine."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
            command = (stat.parent / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if raw[raw.index("(") + 1 :].startswith("postgres") and f" {database} " in command:
            fields = raw.rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def serial_cost(*, key: str, n: int) -> dict[str, float]:
    """One accept at a time through Django's test client in this process: this thread's CPU per
    accept (the view, its middleware, the test client's own small share) and the CPU the
    database's backends spent on it. Independent of the other work on the machine, unlike the
    throughput rounds, so it compares two versions of the code on a busy machine."""
    import time

    from django.db import connection
    from django.test import Client

    client = Client(headers={"Authorization": f"Bearer {key}", "Host": "127.0.0.1"})

    def post(i: int) -> None:
        r = client.post(
            "/v1/session/message", json.dumps({"message": f"serial {i}"}), content_type="application/json"
        )
        assert r.status_code == 202, r.content

    for i in range(min(50, n)):
        post(i)  # warm: caches, prepared statements, the pool
    database = str(connection.settings_dict["NAME"])
    pg_before, cpu_before = _postgres_cpu_seconds(database), time.thread_time()
    for i in range(n):
        post(i)
    cpu, pg = time.thread_time() - cpu_before, _postgres_cpu_seconds(database) - pg_before
    out = {"web CPU ms per accept (this thread)": round(cpu * 1000 / n, 2)}
    if connection.vendor == "postgresql":
        out["PostgreSQL CPU ms per accept"] = round(pg * 1000 / n, 2)
    return out


def report(rows: list[dict[str, Any]], counts: dict[str, float], *, concurrency: int) -> str:
    lines = [
        f"### Accept vs `GET /healthz`, {concurrency} keep-alive clients, same web process",
        "",
        "| round | healthz req/s | accept req/s | ratio | healthz p50/p99 ms | accept p50/p99 ms "
        "| web CPU ms per healthz | web CPU ms per accept | errors |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for i, r in enumerate(rows, 1):
        h, a = r["healthz"], r["accept"]
        bad = h["errors"] + a["errors"] + sum(v for k, v in a["status"].items() if str(k) != "202")
        lines.append(
            f"| {i} | {h['rps']} | {a['rps']} | **{r['ratio']}** | {h['p50_ms']}/{h['p99_ms']} "
            f"| {a['p50_ms']}/{a['p99_ms']} | {h['cpu_ms_per_request']} | {a['cpu_ms_per_request']} | {bad} |"
        )
    lines += ["", "| per accept (in-process count) | value |", "| --- | ---: |"]
    lines += [f"| {k} | {v} |" for k, v in counts.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="one round of 2 s")
    parser.add_argument("--serial", type=int, default=0, help="only: N accepts one at a time, in-process")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds = 2.0, 1
    s.django_setup()
    from bench.turn_latency import _drop_redis_keys, _forget_earlier_runs

    print(f"Machine: {machine_description()}")
    print(f"Database: {'PostgreSQL' if os.environ.get('DATABASE_URL') else 'SQLite (embedded)'}\n")
    _forget_earlier_runs()
    key = s.api_key()
    if args.serial:
        try:
            cost = serial_cost(key=key, n=args.serial)
        finally:
            _forget_earlier_runs()
            _drop_redis_keys()
        print(f"| {args.serial} serial accepts | value |\n| --- | ---: |")
        print("\n".join(f"| {k} | {v} |" for k, v in cost.items()))
        return 0
    try:
        rows = throughput(key=key, seconds=args.seconds, rounds=args.rounds, concurrency=args.concurrency)
        counts = statements_per_accept(key=key)
    finally:
        _forget_earlier_runs()
        _drop_redis_keys()
    print(report(rows, counts, concurrency=args.concurrency))
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
