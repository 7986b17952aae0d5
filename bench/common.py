"""Shared pieces of the benchmarks: percentiles, result tables, the machine they ran on."""

from __future__ import annotations

import importlib.util
import os
import platform
import random
import subprocess
import sys
import uuid
from dataclasses import dataclass, field


def bench_environment() -> None:
    """Settings every benchmark process and the processes it starts share: production-like."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "somaagent.settings")
    # Measure what production runs: DEBUG off (no query log, no debug cursors).
    os.environ.setdefault("DJANGO_DEBUG", "0")
    # The per-key rate limit still runs on every request; it is set high enough not to refuse the load.
    os.environ.setdefault("SOMA_RATE_LIMIT_PER_MINUTE", "100000000")
    os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)


def quiet_client_logs() -> None:
    """The report goes to stdout: the benchmark's own HTTP client logs nothing there."""
    import logging

    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def noop_round_trips_ms(n: int, *, warmup: int = 10) -> list[float]:
    """``n`` round trips of the bare ``soma.noop`` task (send, result back), in ms, after a warm-up."""
    import time

    from somaagent.celery import app

    samples = []
    for i in range(n + warmup):
        started = time.perf_counter()
        assert app.send_task("soma.noop").get(timeout=30) == "ok"
        if i >= warmup:
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``samples``."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class Row:
    metric: str
    samples_ms: list[float]
    target: str = ""

    @property
    def p50(self) -> float:
        return percentile(self.samples_ms, 50)

    @property
    def p99(self) -> float:
        return percentile(self.samples_ms, 99)


@dataclass
class Table:
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [
            f"### {self.title}",
            "",
            "| metric | n | p50 ms | p99 ms | target |",
            "| --- | ---: | ---: | ---: | --- |",
        ]
        for row in self.rows:
            lines.append(
                f"| {row.metric} | {len(row.samples_ms)} | {row.p50:.1f} | {row.p99:.1f} | {row.target} |"
            )
        if self.notes:
            lines.append("")
            lines.extend(f"- {note}" for note in self.notes)
        return "\n".join(lines)


def _first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def machine_description() -> str:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):  # noqa: SIM115 - read once
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = "?"
    try:
        for line in open("/proc/meminfo"):  # noqa: SIM115
            if line.startswith("MemTotal"):
                mem_gb = f"{int(line.split()[1]) / 1024 / 1024:.0f} GB"
                break
    except OSError:
        pass
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu}), {mem_gb} RAM, "
        f"Python {sys.version.split()[0]}, {_first_line(['psql', '--version'])}, "
        f"load average at start {load}, {installed_packages()}"
    )


def run_header(module: str) -> str:
    """The first lines of a benchmark's report: the machine, and the command that ran it."""
    command = " ".join([sys.executable, "-m", module, *sys.argv[1:]])
    return f"- machine: {machine_description()}\n- command: `{command}`"


def installed_packages() -> str:
    """Which requirements this interpreter has: the development tools add memory to every
    process (httpx loads ``rich`` when it is installed), so RSS figures depend on it."""
    if importlib.util.find_spec("pytest") is None:
        return "requirements.txt only"
    return "requirements.txt and requirements-dev.txt"


def migrated_django_with_own_prefix() -> None:
    """Django set up for a bench in this process: the bench environment, a Redis key prefix of
    this run's own, quiet client logs, the database migrated."""
    bench_environment()
    os.environ["SOMA_REDIS_PREFIX"] = f"bench{uuid.uuid4().hex[:8]}:"
    import django

    django.setup()
    quiet_client_logs()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def made_up_words(rng: random.Random, count: int) -> list[str]:
    """``count`` distinct made-up words (2 to 4 syllables): a vocabulary no stemmer or stop list knows."""
    syllables = ["ka", "lo", "mi", "re", "tu", "sa", "ne", "po", "vi", "da", "gu", "fe", "zo", "ri", "ba"]
    seen: set[str] = set()
    words: list[str] = []
    while len(words) < count:
        w = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words
