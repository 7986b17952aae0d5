"""A test run leaves nothing behind: the embedded Redis server it started stops with it, and the
logs and metrics directories of the processes it started are removed when it passes (kept, and
named, when it fails)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from somaagent import embedded_redis
from tests.live import ROOT, wait_until

pytestmark = pytest.mark.integration

INNER = """
import os

from somaagent.redis_client import sync_redis
from tests.live import LiveSystem, StubServer


def test_uses_the_embedded_redis_and_starts_a_process():
    assert sync_redis().ping()
    StubServer("tests.stubs.web_server").stop()
    assert LiveSystem().env["PROMETHEUS_MULTIPROC_DIR"].startswith(os.environ["INNER_RUN_DIR"])


def test_outcome():
    assert os.environ["INNER_OUTCOME"] == "pass"
"""

# What this run's environment says about itself must not leak into the inner run.
LEAKS = (
    "SOMA_TEST_RUN",
    "SOMA_REDIS_PREFIX",
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "SOMA_VAR_DIR",
    "PROMETHEUS_MULTIPROC_DIR",
)


@pytest.fixture
def var_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="soma-tr-"))  # short: the socket path must fit
    try:
        yield path
    finally:
        embedded_redis.stop(path)
        shutil.rmtree(path, ignore_errors=True)


def inner_command(
    var_dir: Path, source: str, *, workers: int, **extra: str
) -> tuple[list[str], dict[str, str], Path]:
    """The argv and environment of a test run of its own over ``source``, and its logs directory."""
    test_file = var_dir / f"test_inner_{uuid.uuid4().hex[:8]}.py"
    test_file.write_text(source)
    run_id = f"inner{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k not in LEAKS and not k.startswith("PYTEST_")}
    run_dir = Path(tempfile.gettempdir()) / f"soma-test-logs-{run_id}"
    env.update(SOMA_VAR_DIR=str(var_dir), SOMA_TEST_RUN=run_id, INNER_RUN_DIR=str(run_dir), **extra)
    argv = [sys.executable, "-m", "pytest", "-c", str(ROOT / "pytest.ini"), "-p", "no:cacheprovider", "-q"]
    if workers:
        argv += ["-n", str(workers)]
    return [*argv, str(test_file)], env, run_dir


def inner_run(var_dir: Path, *, outcome: str, workers: int) -> tuple[subprocess.CompletedProcess[str], Path]:
    argv, env, run_dir = inner_command(var_dir, INNER, workers=workers, INNER_OUTCOME=outcome)
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    return done, run_dir


def test_a_passing_run_stops_its_redis_and_removes_its_logs(var_dir: Path) -> None:
    done, logs = inner_run(var_dir, outcome="pass", workers=2)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert not embedded_redis.is_running(var_dir), "the run started the server: it must stop it"
    assert "Stopped the embedded Redis server" in done.stdout
    assert not logs.exists(), f"logs left behind in {logs}"


def test_a_failing_run_keeps_its_logs_and_says_where(var_dir: Path) -> None:
    done, logs = inner_run(var_dir, outcome="fail", workers=0)
    try:
        assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
        assert f"Logs of the processes this test run started: {logs}" in done.stdout
        assert any(logs.glob("web_server-*.log")), "the stub's log is kept"
        assert any(logs.glob("soma-metrics-*")), "and the metrics directory"
        assert not embedded_redis.is_running(var_dir)
    finally:
        shutil.rmtree(logs, ignore_errors=True)


def test_a_server_someone_else_started_is_left_running(var_dir: Path) -> None:
    embedded_redis.ensure_running(var_dir)
    done, _ = inner_run(var_dir, outcome="pass", workers=0)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert embedded_redis.is_running(var_dir)
    assert "still running" in done.stdout


INTERRUPTED = """
import os
import time
from pathlib import Path

import pytest

from somaagent.redis_client import sync_redis
from tests.live import StubServer


@pytest.fixture(scope="session")
def stub():
    server = StubServer("tests.stubs.web_server")
    yield server
    server.stop()


def test_waits_for_ctrl_c(stub):
    assert sync_redis().ping()  # the embedded server is up, started by this run
    Path(os.environ["INNER_STARTED"]).write_text(str(stub.proc.popen.pid))
    time.sleep(200)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_ctrl_c_on_a_test_run_stops_what_it_started(var_dir: Path) -> None:
    """``make test`` interrupted with Ctrl-C (SIGINT to its process group, as a terminal sends it):
    the processes its fixtures started end, and so does the embedded Redis server it started."""
    started = var_dir / "started"
    argv, env, run_dir = inner_command(var_dir, INTERRUPTED, workers=2, INNER_STARTED=str(started))
    # SIGINT handled (not ignored, as in a background job) whatever this process inherited.
    default_sigint = "import os, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler)"
    run = subprocess.Popen(
        [sys.executable, "-c", f"{default_sigint}; os.execv(sys.argv[1], sys.argv[1:])", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )
    try:
        wait_until(lambda: started.exists() or run.poll() is not None, timeout=180, what="the inner test")
        assert run.poll() is None, run.communicate()[0][-3000:]
        stub_pid = int(started.read_text())
        assert _alive(stub_pid) and embedded_redis.is_running(var_dir)
        os.killpg(run.pid, signal.SIGINT)
        out = run.communicate(timeout=120)[0]
        assert not _alive(stub_pid), f"the stub a fixture started is still running\n{out[-3000:]}"
        assert not embedded_redis.is_running(var_dir), (
            f"the run started the server: it must stop it\n{out[-3000:]}"
        )
        assert "Stopped the embedded Redis server" in out, out[-3000:]
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(timeout=10)
        shutil.rmtree(run_dir, ignore_errors=True)
