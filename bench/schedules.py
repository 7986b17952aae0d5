"""The scheduler's own cost at 10,000 active schedules, and webhook delivery throughput.

    python -m bench.schedules                    # 10,000 schedules, 60 s of ticks; 2,000 deliveries
    python -m bench.schedules --schedules 1000 --seconds 20 --deliveries 500

Schedules: N interval schedules (one hour each, their due times spread evenly over the
hour, so N/60 fall due every minute) over 100 tenants, in the database the environment
names. For ``--seconds`` the tick runs in this process every ``SOMA_SCHEDULE_TICK_SECONDS``
(5 s), as the beat's task would in a worker; each run's message is accepted as a turn (an
outbox row and a broker message). No worker consumes them: the runs are marked completed
after each tick, as if their turns ended at once, so that only the scheduler is measured.
Reported: the tick's CPU per minute (this process), its wall time p50/p99, and the lateness
of each run (started minus due) p50/p99, which the tick period bounds.

Webhooks: M deliveries to a local receiver (a threaded HTTP server answering 204) sent by 8
threads of this process through the same code as the ``webhooks.deliver`` task; reported
in deliveries per second, with the receiver on the same two cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.common import bench_environment, percentile, quiet_client_logs, run_header


def _setup() -> None:
    bench_environment()
    os.environ["SOMA_REDIS_PREFIX"] = f"bench{uuid.uuid4().hex[:8]}:"
    os.environ.setdefault("SOMA_SCHEDULE_MAX_RUNNING", "100000")
    os.environ.setdefault("SOMA_SCHEDULE_TENANT_CONCURRENCY", "100000")
    import django

    django.setup()
    quiet_client_logs()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _schedules(n: int) -> list[Any]:
    from django.utils import timezone

    from conversations.schedules.models import Schedule
    from somaagent.identity.apikeys import api_key_create, tenant_get_or_create

    now = timezone.now()
    tenants = []
    for i in range(100):
        tenant = tenant_get_or_create(name=f"sched-bench-{uuid.uuid4().hex[:8]}-{i}")
        key, _ = api_key_create(tenant=tenant, name="bench")
        tenants.append((tenant, key))
    rows = []
    for i in range(n):
        tenant, key = tenants[i % len(tenants)]
        first = now + timedelta(seconds=3600 * i / n)
        rows.append(
            Schedule(
                tenant=tenant,
                name=f"s{i}",
                message="Ping {time}",
                kind=Schedule.Kind.INTERVAL,
                interval_seconds=3600,
                anchor=first,
                next_run_at=first,
                owner_key=key,
            )
        )
    Schedule.objects.bulk_create(rows, batch_size=1000)
    return [t for t, _ in tenants]


def _process_cpu() -> float:
    usage = os.times()
    return usage.user + usage.system


def measure_ticks(n: int, seconds: float) -> dict[str, Any]:
    from conversations.schedules.models import Schedule, ScheduleRun
    from conversations.schedules.services import schedule_tick
    from somaagent.environment import env_float

    tenants = _schedules(n)
    period = env_float("SOMA_SCHEDULE_TICK_SECONDS", 5.0)
    walls, cpu_spent, began = [], 0.0, time.monotonic()
    while time.monotonic() - began < seconds:
        tick_started, cpu_before = time.perf_counter(), _process_cpu()
        schedule_tick()
        ScheduleRun.objects.filter(status="queued").update(status="completed")
        walls.append((time.perf_counter() - tick_started) * 1000)
        cpu_spent += _process_cpu() - cpu_before
        time.sleep(max(0.0, period - (time.perf_counter() - tick_started)))
    runs = list(
        ScheduleRun.objects.filter(tenant_id__in=[t.pk for t in tenants]).values_list("due_at", "started_at")
    )
    late = [(started - due).total_seconds() * 1000 for due, started in runs if started is not None]
    Schedule.objects.filter(tenant__in=tenants).update(enabled=False)
    return {
        "schedules": n,
        "seconds": seconds,
        "ticks": len(walls),
        "runs": len(late),
        "cpu_s_per_minute": cpu_spent * 60 / seconds,
        "tick_p50_ms": percentile(walls, 50),
        "tick_p99_ms": percentile(walls, 99),
        "late_p50_ms": percentile(late, 50),
        "late_p99_ms": percentile(late, 99),
        "period_s": period,
    }


class _Quiet(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def measure_webhooks(m: int, threads: int = 8) -> dict[str, Any]:
    from django.db import connection, transaction

    from conversations.webhooks.delivery import webhook_deliver_many
    from conversations.webhooks.emit import webhook_emit
    from conversations.webhooks.endpoints import endpoint_create
    from conversations.webhooks.models import WebhookDelivery, WebhookEndpoint
    from somaagent.audit import Actor
    from somaagent.identity.apikeys import tenant_get_or_create

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    tenant = tenant_get_or_create(name=f"hook-bench-{uuid.uuid4().hex[:8]}")
    endpoint, _ = endpoint_create(
        tenant=tenant, url="https://example.invalid/", events=["*"], actor=Actor.system()
    )
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        url=f"http://127.0.0.1:{server.server_address[1]}/hook", allow_private=True
    )
    for i in range(m):
        with transaction.atomic():
            webhook_emit(
                tenant_id=tenant.pk, event="turn.finished", subject=f"t{i}", data={"reply": "x" * 200}
            )
    ids = [str(pk) for pk in WebhookDelivery.objects.filter(tenant_id=tenant.pk).values_list("pk", flat=True)]
    chunks = [ids[i::threads] for i in range(threads)]

    def work(chunk: list[str]) -> None:
        try:
            webhook_deliver_many(chunk)
        finally:
            connection.close()

    began = time.perf_counter()
    workers = [threading.Thread(target=work, args=(c,)) for c in chunks]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - began
    server.shutdown()
    delivered = WebhookDelivery.objects.filter(tenant_id=tenant.pk, status="delivered").count()
    return {"deliveries": m, "delivered": delivered, "seconds": elapsed, "per_second": delivered / elapsed}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--deliveries", type=int, default=2_000)
    args = parser.parse_args()
    _setup()
    print(run_header("bench.schedules"))
    print(f"- DATABASE_URL: {os.environ.get('DATABASE_URL') or '(unset: embedded SQLite)'}")
    ticks = measure_ticks(args.schedules, args.seconds)
    hooks = measure_webhooks(args.deliveries)
    print()
    print(
        "| schedules | ticks (period) | runs started | tick CPU per minute "
        "| tick wall p50 / p99 | lateness p50 / p99 |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {ticks['schedules']:,} | {ticks['ticks']} ({ticks['period_s']:g} s) | {ticks['runs']} | "
        f"{ticks['cpu_s_per_minute']:.2f} s | {ticks['tick_p50_ms']:.0f} / {ticks['tick_p99_ms']:.0f} ms | "
        f"{ticks['late_p50_ms']:.0f} / {ticks['late_p99_ms']:.0f} ms |"
    )
    print()
    print("| webhook deliveries | delivered | seconds | deliveries/s (8 threads) |")
    print("| ---: | ---: | ---: | ---: |")
    print(
        f"| {hooks['deliveries']:,} | {hooks['delivered']:,} | {hooks['seconds']:.1f} "
        f"| {hooks['per_second']:.0f} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
