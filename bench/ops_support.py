"""Process helpers for the operations benchmarks, on top of tests.live (the same real processes).

The benchmark database is ``DATABASE_URL`` when set (use Postgres for numbers
that mean something), else ``var/bench.sqlite3``. Each scenario starts its own
system with its own Redis key prefix, so queued work never leaks between them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import bench_environment, quiet_client_logs

ROOT = Path(__file__).resolve().parent.parent


def django_setup() -> None:
    bench_environment()
    os.environ.setdefault("SOMA_REDIS_PREFIX", f"bench{uuid.uuid4().hex[:6]}:")
    if not os.environ.get("DATABASE_URL"):
        os.environ.setdefault("SOMA_SQLITE_PATH", str(ROOT / "var" / "bench.sqlite3"))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    quiet_client_logs()


def api_key() -> str:
    from somaagent.identity.apikeys import api_key_create, tenant_get_or_create

    tenant = tenant_get_or_create(name=f"bench-{uuid.uuid4().hex[:8]}")
    return api_key_create(tenant=tenant, name="bench")[1]


def system(*, llm_url: str | None = None, concurrency: int = 2, **env: str) -> Any:
    from tests.live import LiveSystem

    base = {"SOMA_REDIS_PREFIX": f"b{uuid.uuid4().hex[:8]}:", "SOMA_ACCESS_LOG": "1", **env}
    if llm_url:
        base.update({"SOMA_LLM_BASE_URL": f"{llm_url}/v1", "SOMA_LLM_MODEL": "stub-model"})
    return LiveSystem(env=base, worker_concurrency=concurrency)


def loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs the load generator in a second process and returns its JSON result."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=float(spec["seconds"]) + 120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _children(pid: int) -> list[int]:
    try:
        raw = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    kids = [int(p) for p in raw]
    return kids + [g for k in kids for g in _children(k)]


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the highest resident set size the process has had."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def process_tree_peaks(pid: int) -> dict[str, float]:
    peaks = {"main": peak_rss_mb(pid)}
    for i, child in enumerate(_children(pid)):
        peaks[f"child{i}"] = peak_rss_mb(child)
    return peaks


def median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2] if values else 0.0


def now() -> float:
    return time.perf_counter()
