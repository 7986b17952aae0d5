"""`make run` the way the README says, in a temporary copy of the checkout: what a newcomer sees.

With ``LOCAL_MODEL=0`` and the stub model. The banner must come once everything
answers, its URL must answer ``/healthz``, its ``curl`` commands must work as
printed, and Ctrl-C (SIGINT to make's process group, as a terminal sends it)
must leave no process behind, the embedded Redis server included.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from somaagent.ports import port_is_free
from tests.live import ROOT, StubServer, free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.integration]

BANNER_URL = re.compile(r"^SomaAgent is ready at (http://\S+)/$")


def checkout_copy() -> Path:
    """The working tree's files (tracked and new, not ignored), with the test's own venv linked."""
    copy = Path(tempfile.mkdtemp(prefix="soma-mr-"))  # short: var/redis.sock must fit a socket path
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (f.decode() for f in files)):
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    (copy / ".venv").symlink_to(Path(sys.prefix))
    return copy


def processes_under(directory: Path) -> list[str]:
    """Processes running from ``directory`` (their cwd or command line names it)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(str(directory)) or str(directory) in cmdline:
            found.append(f"{proc.name}: {cmdline.strip()[:160]}")
    return found


class Output:
    """make's output, read line by line as it comes."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.banner_seen: float | None = None  # when the banner's first line was read
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if self.banner_seen is None and BANNER_URL.match(self.lines[-1]):
                self.banner_seen = time.time()

    def index(self, pattern: re.Pattern[str]) -> int | None:
        return next((i for i, line in enumerate(list(self.lines)) if pattern.search(line)), None)

    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def copy() -> Iterator[Path]:
    if not Path("/proc/self/cwd").exists():
        pytest.skip("needs /proc to find the processes make run leaves behind")
    path = checkout_copy()
    try:
        yield path
    finally:
        for line in processes_under(path):  # a failed test must not leave them running either
            try:
                os.kill(int(line.split(":")[0]), signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(path, ignore_errors=True)


def first_log(out: Output, match: Callable[[dict[str, Any]], bool]) -> float | None:
    """The ``ts`` (epoch seconds) of the first JSON log line a process wrote that ``match``es."""
    for line in list(out.lines):
        _, bar, rest = line.partition("| ")
        if bar and rest.startswith("{"):
            try:
                doc = json.loads(rest)
            except ValueError:
                continue
            if match(doc):
                return datetime.fromisoformat(doc["ts"]).timestamp()
    return None


def printed_commands(banner: list[str]) -> list[str]:
    """The banner's shell commands exactly as printed (continuation lines included)."""
    commands: list[str] = []
    current: list[str] = []
    for line in banner:
        text = line[2:] if line.startswith("  ") else line
        if current:
            current.append(text)
        elif text.startswith("curl "):
            current = [text]
        if current and not text.endswith("\\"):
            commands.append("\n".join(current))
            current = []
    return commands


def test_make_run_prints_a_url_and_commands_that_work_and_stops_everything(
    copy: Path, llm_stub: StubServer
) -> None:
    expected_port = 8000 if port_is_free(8000) else None  # the default, unless this machine uses it
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(copy)),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "TMPDIR": tempfile.gettempdir(),
        "LOCAL_MODEL": "0",
        "SOMA_LLM_BASE_URL": f"{llm_stub.url}/v1",
        "SOMA_LLM_MODEL": "stub-model",
    }
    if expected_port is None:
        expected_port = free_port()
        env["PORT"] = str(expected_port)
    # -o: the venv is this test run's own; never reinstall into it.
    make = subprocess.Popen(
        ["make", "--no-print-directory", "-o", ".venv/.deps-run", "run"],
        cwd=copy,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )
    out = Output(make)
    try:
        wait_until(
            lambda: (
                out.index(re.compile(r"^Ctrl-C stops everything\.$")) is not None or make.poll() is not None
            ),
            timeout=300,
            interval=0.2,
            what="make run's banner",
        )
        assert make.poll() is None, f"make run ended early:\n{out.text()[-6000:]}"
        banner_seen = out.banner_seen
        assert banner_seen is not None
        start = out.index(BANNER_URL)
        assert start is not None
        url = BANNER_URL.match(out.lines[start]).group(1)  # type: ignore[union-attr]
        assert url == f"http://127.0.0.1:{expected_port}"
        assert httpx.get(f"{url}/healthz", timeout=5).json() == {"status": "ok"}

        # The banner came after readiness: by the clocks of the processes themselves (their JSON
        # lines' ts; honcho may relay a line later than it was written), the web had answered
        # /readyz and a Celery worker was ready before the banner was read.
        readyz = wait_until(
            lambda: first_log(out, lambda d: d.get("message") == "GET /readyz 200"), timeout=10, what="readyz"
        )
        worker = wait_until(
            lambda: first_log(out, lambda d: str(d.get("message", "")).endswith(" ready.")),
            timeout=10,
            what="a worker's ready line",
        )
        assert readyz < banner_seen and worker < banner_seen, (readyz, worker, banner_seen)
        assert sum(bool(BANNER_URL.match(line)) for line in out.lines) == 1, "printed once"
        assert (copy / "var" / "dev-credentials.txt").exists()

        post, stream = printed_commands(out.lines[start:])
        sent = subprocess.run(["bash", "-c", post], capture_output=True, text=True, timeout=30)
        assert sent.returncode == 0, sent.stderr
        accepted = json.loads(sent.stdout)
        follow = subprocess.Popen(
            ["bash", "-c", stream.replace("<session_id>", accepted["session_id"])],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            assert follow.stdout is not None
            deadline = time.monotonic() + 60
            events = []
            for line in follow.stdout:  # data lines, and a heartbeat comment every 15 s
                if line.startswith("data:"):
                    events.append(json.loads(line[5:]))
                    if events[-1]["type"] == "assistant.final":
                        break
                if time.monotonic() > deadline:
                    break
            assert events and events[-1]["type"] == "assistant.final", events
            assert events[-1]["data"]["message"].startswith("You said: Hello!")
        finally:
            os.killpg(follow.pid, signal.SIGKILL)
            follow.wait(timeout=10)

        os.killpg(make.pid, signal.SIGINT)  # Ctrl-C
        try:
            make.wait(timeout=90)
        except subprocess.TimeoutExpired:
            still = "\n".join(processes_under(copy))
            message = f"make run did not end within 90 s of Ctrl-C; still running:\n{still}"
            raise AssertionError(message) from None
        wait_until(lambda: not processes_under(copy), timeout=20, what="every process of make run to end")
        assert port_is_free(expected_port)
        assert re.search(
            r"^Stopped the embedded Redis server \(pid \d+, .*redis\.sock\)\.$", out.text(), re.M
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- make run's output (end) ---\n{out.text()[-8000:]}") from exc
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait(timeout=10)
