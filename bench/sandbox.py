"""Sandbox start-up cost: p50/p99 of running ``print("ok")`` at each isolation level present.

Run: ``.venv/bin/python -m bench.sandbox [--runs N]``. Measures the whole launch
chain (setpriv → prlimit → bwrap/unshare → python) as a tool call pays it,
next to a bare ``python -c`` subprocess for reference.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time

from bench.common import bench_environment, quiet_client_logs

bench_environment()

import django  # noqa: E402

django.setup()
quiet_client_logs()

from tools.sandbox import SandboxLimits, probe  # noqa: E402
from tools.sandbox.adapters import BwrapSandbox, RlimitsSandbox  # noqa: E402

PYTHON = "/usr/bin/python3"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    limits = SandboxLimits.from_settings()
    rows = []
    bare = []
    for _ in range(args.runs):
        started = time.perf_counter()
        subprocess.run([PYTHON, "-I", "-c", "print('ok')"], capture_output=True, check=True)
        bare.append((time.perf_counter() - started) * 1000)
    rows.append(("bare python subprocess", bare))
    for box in (
        BwrapSandbox(python=PYTHON, uids=range(1_000_000, 1_001_000)),
        RlimitsSandbox(python=PYTHON, uids=range(1_000_000, 1_001_000)),
    ):
        why = probe(box, isolation=box.level == "bwrap")  # rlimits promises no network only
        if why is not None:
            print(f"{box.level}: not available ({why})")
            continue
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            result = box.run_python(code="print('ok')", limits=limits)
            times.append((time.perf_counter() - started) * 1000)
            assert result.stdout == "ok\n", result
        rows.append((f"sandbox {box.level}", times))
    print(f"{'launch':28} {'runs':>5} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for name, times in rows:
        print(
            f"{name:28} {len(times):5d} {percentile(times, 50):8.1f} {percentile(times, 99):8.1f} "
            f"{statistics.mean(times):8.1f}"
        )


if __name__ == "__main__":
    main()
