"""Soak: the crash and outage scenarios again and again, with a table of trials and recoveries.

    python -m bench.soak [--trials N]     # or: make soak [SOAK_TRIALS=N]

Runs each scenario's test N times (default 20) in a row — the whole worker
SIGKILLed mid-reply (Redis broker), PostgreSQL stopped for 12 s, Redis stopped
for 10 s, the SQLite disk filled, every kind of door knocked on while PostgreSQL
is stopped, Redis (not the broker) stopped under an open stream — and prints, per scenario, how many trials
passed and the recovery times the tests report (from the dependency's return,
or the kill, to the first message accepted or the reply finished).
Uses DATABASE_URL / REDIS_URL like the test suite.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from tempfile import TemporaryDirectory

SCENARIOS = {
    "worker SIGKILLed mid-reply": (
        "tests/conversations/test_fault_worker.py::test_worker_killed_mid_reply_with_redis_broker"
    ),
    "PostgreSQL stopped 12 s": "tests/conversations/test_outage_database.py",
    "Redis stopped 10 s": "tests/conversations/test_outage_redis.py",
    "SQLite disk full": "tests/conversations/test_outage_disk.py",
    "PostgreSQL stopped: every kind of door": "tests/conversations/test_outage_database_doors.py",
    "Redis (not the broker) stopped mid-stream": "tests/conversations/test_outage_redis_streams.py",
}
RECOVERY = re.compile(r"RECOVERY ([0-9.]+) s")


def _trial(target: str, out: Path) -> tuple[str, list[float], float]:
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "",
            "-s",
            target,
            f"--junitxml={out}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    outcome = {0: "passed", 5: "not run"}.get(done.returncode, "FAILED")
    try:
        skipped = ET.parse(out).getroot().find(".//skipped") is not None
    except (ET.ParseError, FileNotFoundError):
        skipped = False
    if skipped and outcome == "passed":
        outcome = "skipped"
    return outcome, [float(m) for m in RECOVERY.findall(done.stdout)], seconds


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--only", action="append", default=[], help="scenario name substrings")
    args = parser.parse_args()
    rows = []
    with TemporaryDirectory() as tmp:
        for name, target in SCENARIOS.items():
            if args.only and not any(o.lower() in name.lower() for o in args.only):
                continue
            outcomes: list[str] = []
            recoveries: list[float] = []
            for trial in range(args.trials):
                outcome, recovered, seconds = _trial(target, Path(tmp) / f"{trial}.xml")
                outcomes.append(outcome)
                recoveries += recovered
                print(
                    f"{name} trial {trial + 1}: {outcome}, {seconds:.0f} s, recovery {recovered}", flush=True
                )
            rows.append((name, outcomes, recoveries))
    print()
    print("| scenario | trials | passed | failed | recovery p50 / max |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, outcomes, recoveries in rows:
        spread = f"{statistics.median(recoveries):.1f} / {max(recoveries):.1f} s" if recoveries else "—"
        print(
            f"| {name} | {len(outcomes)} | {outcomes.count('passed')} | "
            f"{sum(o == 'FAILED' for o in outcomes)} | {spread} |"
        )
    return 0 if all("FAILED" not in o for _, o, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
