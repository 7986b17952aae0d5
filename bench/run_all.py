"""Run the benchmarks and print their tables (Markdown, ready for BENCHMARKS.md).

    python -m bench.run_all                 # every benchmark
    python -m bench.run_all turn_latency    # some of them
    python -m bench.run_all --quick         # fewer samples, for a smoke run

Each benchmark is a module with ``run(quick: bool) -> list[Table]`` that starts
the real processes it needs and stops them. Add yours to ``BENCHMARKS``.
Results depend on DATABASE_URL / REDIS_URL / CELERY_BROKER_URL, like the app.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import subprocess
import sys
import time

from bench.common import machine_description

BENCHMARKS: dict[str, str] = {
    "turn_latency": "bench.turn_latency",
    "ops": "bench.ops",
    "policy_budget": "bench.policy_budget",
    "memory_recall": "bench.memory_recall",
    "sandbox": "bench.sandbox",
    "concurrency": "bench.concurrency",
    "accept_cost": "bench.accept_cost",
    "approval_resume": "bench.approval_resume",
}
# Script benchmarks (their own ``main``) that understand ``--quick``.
ACCEPTS_QUICK = {"bench.ops", "bench.accept_cost"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})"
    )
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")

    print("## Benchmark run\n")
    print(f"- when: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(f"- machine: {machine_description()}")
    command = [sys.executable, "-m", "bench.run_all", *(argv or sys.argv[1:])]
    print(f"- command: `{' '.join(shlex.quote(a) for a in command)}`")
    for var in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
        print(f"- {var}: {os.environ.get(var) or '(unset: embedded default)'}")
    print()
    for name in args.names or list(BENCHMARKS):
        module = importlib.import_module(BENCHMARKS[name])
        if hasattr(module, "run"):
            for table in module.run(quick=args.quick):
                print(table.markdown())
                print(flush=True)
            continue
        # A script of its own: run it as one and show what it printed.
        extra = ["--quick"] if args.quick and BENCHMARKS[name] in ACCEPTS_QUICK else []
        print(f"### {name}: `python -m {BENCHMARKS[name]} {' '.join(extra)}`\n\n```", flush=True)
        result = subprocess.run([sys.executable, "-m", BENCHMARKS[name], *extra], check=False)
        print("```\n", flush=True)
        if result.returncode != 0:
            print(f"{name} failed with exit status {result.returncode}", file=sys.stderr)
            return result.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
