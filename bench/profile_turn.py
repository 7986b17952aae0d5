"""Where the time of an accept and of a turn goes: py-spy on the real processes.

    python -m bench.profile_turn [--seconds-per-phase N]

Starts the same processes as bench.turn_latency, samples the web process
(py-spy, 200 Hz, idle included) while one client sends messages, then the
worker's pool processes while a client waits for each reply's first delta,
and prints the heaviest frames of our code and of the libraries under it
(inclusive share of the samples that contain the phase's entry point).
Needs py-spy (requirements-dev) and ptrace rights over the processes.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import turn_latency as tl
from bench.common import noop_round_trips_ms

FRAME_LINE = re.compile(r":\d+\)$")


SPY_OPTIONS = ["--format", "raw", "-r", "200", "--idle", "--threads"]


def _record(pids: list[int], out_dir: Path, name: str) -> list[subprocess.Popen[bytes]]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return [
        subprocess.Popen(
            [spy, "record", "-p", str(pid), "-o", str(out_dir / f"{name}-{pid}.txt"), *SPY_OPTIONS],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in pids
    ]


def _stop(spies: list[subprocess.Popen[bytes]]) -> None:
    for spy in spies:
        spy.send_signal(signal.SIGINT)
    for spy in spies:
        spy.wait(timeout=60)


def _summary(files: list[Path], entry: str, top: int = 30) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for path in files:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = stack.split(";")
            if not any(entry in f for f in frames):
                continue
            n = int(count)
            total += n
            for frame in {FRAME_LINE.sub(")", f) for f in frames}:
                inclusive[frame] += n
    lines = [f"{total} samples of threads inside {entry} (py-spy at 200 Hz: 5 ms each)"]
    skip = ("threading.py", "click/", "celery/bin", "billiard/", "asyncio/", "concurrent/futures", "<module>")
    shown = 0
    for frame, n in inclusive.most_common():
        if any(s in frame for s in skip):
            continue
        lines.append(f"{100 * n / total:5.1f}%  {frame}")
        shown += 1
        if shown >= top:
            break
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    tl._setup_django()
    tl._migrate()
    from somaagent.identity.apikeys import api_key_create, tenant_get_or_create
    from tests.live import LiveSystem, StubServer

    tl._forget_earlier_runs()
    _, key = api_key_create(tenant=tenant_get_or_create(name="bench-profile"), name="bench")
    stub = StubServer("tests.stubs.llm_server")
    system = LiveSystem(env={"SOMA_LLM_BASE_URL": f"{stub.url}/v1", "SOMA_LLM_MODEL": "stub-model"})
    out = Path(tempfile.mkdtemp(prefix="soma-profile-"))
    try:
        system.start()
        noop_round_trips_ms(20)  # warm the broker connection up
        assert system.web is not None
        spies = _record([system.web.popen.pid], out, "web")
        time.sleep(1)
        tl._accept_one_client(system.url, key, args.requests)
        _stop(spies)
        pool = subprocess.run(
            ["pgrep", "-g", str(system.workers[0].popen.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        spies = _record([int(p) for p in pool], out, "worker")
        time.sleep(1)
        tl._first_delta(system.url, key, args.requests // 2)
        _stop(spies)
    finally:
        system.stop()
        stub.stop()
        tl._forget_earlier_runs()
        tl._drop_redis_keys()
    print("## web process, POST /v1/session/message (one client)\n")
    print(_summary(sorted(out.glob("web-*.txt")), "SessionMessageView.post"))
    print("\n## worker pool processes, conversation.run_turn\n")
    print(_summary(sorted(out.glob("worker-*.txt")), "run_turn"))
    print(f"\nraw profiles (py-spy 'raw' format, flamegraph-ready): {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
