"""The embedded Redis server: a run stops the server it started; `make stop` says what it stopped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from somaagent import embedded_redis as er
from tests.live import ROOT, wait_until


@pytest.fixture
def var_dir() -> Iterator[Path]:
    # Short: a unix socket path must stay under ~100 characters.
    path = Path(tempfile.mkdtemp(prefix="soma-r-"))
    try:
        yield path
    finally:
        er.stop(path)
        shutil.rmtree(path, ignore_errors=True)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _server_pid(var_dir: Path) -> int:
    return int((var_dir / "redis.pid").read_text())


def test_a_holder_that_started_the_server_stops_it(var_dir: Path) -> None:
    held = er.acquire(var_dir, label="make run")
    assert held.started and er.is_running(var_dir)
    pid = _server_pid(var_dir)
    released = er.release(held)
    assert released.stopped_pid == pid and _gone(pid) and not er.is_running(var_dir)
    assert released.message() == f"Stopped the embedded Redis server (pid {pid}, {var_dir / 'redis.sock'})."


def test_a_server_started_outside_any_holder_is_left_running_and_named(var_dir: Path) -> None:
    er.ensure_running(var_dir)  # e.g. `manage.py shell` started it
    held = er.acquire(var_dir, label="make run")
    assert not held.started
    released = er.release(held)
    assert released.stopped_pid is None and released.running and er.is_running(var_dir)
    assert "still running" in released.message() and "make stop" in released.message()


HOLDER = """
import sys
from pathlib import Path
from somaagent import embedded_redis as er
held = er.acquire(Path(sys.argv[1]), label="make test")
print("held", flush=True)
sys.stdin.read()
er.release(held)
"""


def _other_holder(var_dir: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(var_dir)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_the_last_holder_to_leave_stops_the_server(var_dir: Path) -> None:
    other = _other_holder(var_dir)  # started it
    held = er.acquire(var_dir, label="make run")
    pid = _server_pid(var_dir)
    released = er.release(held)
    assert released.stopped_pid is None and released.others == {other.pid: "make test"}
    assert "make test (pid" in released.message() and er.is_running(var_dir)
    assert other.stdin is not None
    other.stdin.close()
    assert other.wait(timeout=20) == 0
    assert _gone(pid) and not er.is_running(var_dir)


def test_a_holder_that_died_does_not_keep_the_server_alive(var_dir: Path) -> None:
    other = _other_holder(var_dir)
    held = er.acquire(var_dir, label="make run")
    other.kill()  # never releases
    other.wait(timeout=10)
    pid = _server_pid(var_dir)
    assert er.release(held).stopped_pid == pid and _gone(pid)


def test_stop_never_signals_a_process_that_is_not_the_server(var_dir: Path) -> None:
    (var_dir / "redis.pid").write_text(str(os.getpid()))  # a stale pid file, reused pid
    assert er.stop(var_dir) is None


def test_make_stop_says_what_it_stopped(var_dir: Path) -> None:
    er.ensure_running(var_dir)
    pid = _server_pid(var_dir)
    env = {**os.environ, "SOMA_VAR_DIR": str(var_dir)}

    def make_stop() -> str:
        done = subprocess.run(
            ["make", "--no-print-directory", "stop", f"BIN={Path(sys.executable).parent}"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert make_stop() == f"Stopped the embedded Redis server (pid {pid}, {var_dir / 'redis.sock'})."
    assert _gone(pid)
    assert make_stop() == f"No embedded Redis server was running ({var_dir / 'redis.sock'}); nothing to stop."
    wait_until(lambda: not er.is_running(var_dir), timeout=5, what="server gone")


def test_make_lint_leaves_no_server_running(var_dir: Path) -> None:
    """mypy's Django plugin loads the settings, which start the embedded server when REDIS_URL is
    unset: ``make lint`` must stop the server it caused to start (on one file here, not the tree)."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    env["SOMA_VAR_DIR"] = str(var_dir)
    bin_dir = Path(sys.executable).parent
    planned = subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", "install-dev", "lint", f"BIN={bin_dir}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert planned.returncode == 0, planned.stderr
    mypy_line = next(line for line in planned.stdout.splitlines() if f"{bin_dir}/mypy" in line)
    assert mypy_line.endswith(" ."), mypy_line
    done = subprocess.run(
        ["sh", "-c", f"{mypy_line[:-2]} somaagent/paths.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert not er.is_running(var_dir), f"make lint left the embedded Redis server running\n{done.stdout}"
