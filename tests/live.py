"""Real processes for integration tests: stub servers, the ASGI web server, Celery worker and beat.

Processes run against the test database that pytest-django created and the
test run's Redis prefix, so the test process can read the same rows the
worker writes. Each process is its own process group so a test can SIGKILL a
whole worker (main process and children) the way a crash would.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import httpx
from django.conf import settings
from django.db import connection

from tests.run_logs import LOG_DIR, run_tmpdir

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
ALL_QUEUES = "conversation,tools,memory,default"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    predicate: Callable[[], Any], *, timeout: float, interval: float = 0.05, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def database_env() -> dict[str, str]:
    """Point a child process at the database this test process uses."""
    db = connection.settings_dict
    if settings.IS_SQLITE:
        return {"SOMA_SQLITE_PATH": str(db["NAME"]), "DATABASE_URL": ""}
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return {"DATABASE_URL": f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"}


class Proc:
    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.queues = ""  # what a Celery worker consumes
        self.log_path = LOG_DIR / f"{name}-{os.getpid()}-{int(time.time() * 1000)}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - lives as long as the process
        self.popen = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (a Celery worker's children included)."""
        if self.alive():
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)
        # children left in the group (pool processes) die with SIGKILL too
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._log.close()

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class StubServer:
    """A stub HTTP server module from tests.stubs, started as its own process."""

    def __init__(self, module: str, *args: str) -> None:
        env = {**os.environ}
        self.proc = Proc(module.rsplit(".", 1)[-1], [sys.executable, "-m", module, "--port", "0", *args], env)
        self.port = wait_until(self._read_port, timeout=20, what=f"{module} to start")
        self.url = f"http://127.0.0.1:{self.port}"

    def _read_port(self) -> int | None:
        if not self.proc.alive():
            raise AssertionError(f"stub exited:\n{self.proc.log_tail()}")
        for line in self.proc.log_path.read_text(errors="replace").splitlines():
            if line.startswith("PORT "):
                return int(line.split()[1])
        return None

    def stop(self) -> None:
        self.proc.kill()


def procfile_argv(name: str, env: dict[str, str]) -> list[str]:
    """The Procfile's command for process ``name``, ``${VAR:-default}`` expanded from ``env``."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            command = re.sub(
                r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m.group(1)) or m.group(2), line.split(":", 1)[1]
            )
            return shlex.split(command)
    raise AssertionError(f"no {name!r} process in the Procfile")


def _with_option(argv: list[str], option: str, value: str) -> list[str]:
    """``argv`` with ``option value`` set (replaced if present)."""
    if option in argv:
        at = argv.index(option)
        return [*argv[:at], option, value, *argv[at + 2 :]]
    return [*argv, option, value]


class LiveSystem:
    """web + worker + beat against the test database, configured by ``env`` overrides."""

    # Every system started in this test process: they share one database, so a
    # test that needs its own system pauses the others' sweeps (solo()).
    started: ClassVar[list[LiveSystem]] = []

    def __init__(
        self,
        *,
        env: dict[str, str] | None = None,
        worker_concurrency: int | None = None,
        worker_queues: tuple[str, ...] = (ALL_QUEUES,),
        worker_env: dict[str, str] | None = None,
    ) -> None:
        self.env = {**os.environ, **database_env(), "PYTHONUNBUFFERED": "1", **(env or {})}
        # One metrics directory per system, shared by its processes (as on one host).
        self.env.setdefault("PROMETHEUS_MULTIPROC_DIR", run_tmpdir("soma-metrics-"))
        self.worker_concurrency = worker_concurrency  # None: the Procfile's (the product's default)
        # One worker per entry (e.g. the Procfile's split: conversation work, tool calls).
        self.worker_queues = worker_queues
        self.worker_env = worker_env or {}  # settings of the workers only (on top of ``env``)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.web: Proc | None = None
        self.workers: list[Proc] = []
        self.beat: Proc | None = None
        self._worker_seq = 0

    # --- processes ----------------------------------------------------------------
    def start(self, *, beat: bool = True) -> LiveSystem:
        LiveSystem.started.append(self)
        self.start_web()
        for queues in self.worker_queues:
            self.start_worker(queues=queues)
        if beat:
            self.start_beat()
        return self

    def start_web(self) -> Proc:
        self.web = Proc(
            "web",
            [
                str(VENV_BIN / "uvicorn"),
                "somaagent.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            self.env,
        )
        wait_until(self._web_up, timeout=30, what="web server")
        return self.web

    def _web_up(self) -> bool:
        assert self.web is not None
        if not self.web.alive():
            raise AssertionError(f"web exited:\n{self.web.log_tail()}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def start_worker(self, *, queues: str = ALL_QUEUES, env: dict[str, str] | None = None) -> Proc:
        """The Procfile's ``worker`` command, on ``queues``, under a name of this test's own."""
        self._worker_seq += 1
        env = {**self.env, **self.worker_env, **(env or {})}
        argv = procfile_argv("worker", env)
        argv = _with_option(argv, "-Q", queues)
        argv = _with_option(argv, "-n", f"w{self._worker_seq}-{os.getpid()}@%h")
        if self.worker_concurrency is not None:
            argv = _with_option(argv, "--concurrency", str(self.worker_concurrency))
        argv[0] = str(VENV_BIN / argv[0])
        proc = Proc("worker", [*argv, "--without-gossip", "--without-mingle"], env)
        proc.queues = queues
        wait_until(lambda: self._ready(proc), timeout=60, what="celery worker")
        self.workers.append(proc)
        return proc

    @staticmethod
    def _ready(proc: Proc) -> bool:
        if not proc.alive():
            raise AssertionError(f"worker exited:\n{proc.log_tail()}")
        return "ready." in proc.log_tail(200_000)

    def start_beat(self) -> Proc:
        """The Procfile's ``beat`` command."""
        argv = procfile_argv("beat", self.env)
        argv[0] = str(VENV_BIN / argv[0])
        self.beat = Proc("beat", argv, self.env)
        return self.beat

    def ensure_worker(self) -> None:
        """Start a worker for each of ``worker_queues`` that has none alive (after a kill)."""
        self.workers = [w for w in self.workers if w.alive()]
        for queues in self.worker_queues:
            if self.worker_for(queues) is None:
                self.start_worker(queues=queues)

    def kill_workers(self) -> None:
        """SIGKILL every worker (main process and pool children), as a crash of all of them would."""
        for worker in self.workers:
            worker.kill()
        self.workers.clear()

    def worker_for(self, queues: str) -> Proc | None:
        return next((w for w in self.workers if w.alive() and w.queues == queues), None)

    def stop(self) -> None:
        if self in LiveSystem.started:
            LiveSystem.started.remove(self)
        for proc in [*self.workers, self.beat, self.web]:
            if proc is not None:
                proc.kill()

    def restart(self, *, env: dict[str, str]) -> LiveSystem:
        """Stop every process and start them again (same port) with ``env`` overrides."""
        beat = self.beat is not None
        self.stop()
        self.web, self.workers, self.beat = None, [], None
        self.env = {**self.env, **env}
        return self.start(beat=beat)

    @contextmanager
    def solo(self) -> Iterator[LiveSystem]:
        """Run with the other systems' beats stopped, so their sweeps never publish this system's
        turns to their own brokers; they start again afterwards."""
        with beats_paused(keep=self):
            yield self

    def logs(self) -> str:
        parts = []
        for proc in [self.web, *self.workers, self.beat]:
            if proc is not None:
                parts.append(f"--- {proc.name} ({proc.log_path}) ---\n{proc.log_tail()}")
        return "\n".join(parts)

    # --- clients ------------------------------------------------------------------------
    def client(self, api_key: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        kwargs.setdefault("timeout", 30)
        return httpx.Client(base_url=self.url, headers=headers, **kwargs)


def iter_sse(response: httpx.Response, *, comments: bool = False) -> Iterator[dict[str, Any] | None]:
    """Parse an SSE response into envelopes; comments (heartbeats) yield None if ``comments``."""
    data: list[str] = []
    for line in response.iter_lines():
        if line.startswith("data:"):
            data.append(line[5:].strip())
        elif line.startswith(":") and comments:
            yield None
        elif line == "" and data:
            yield json.loads("\n".join(data))
            data = []


def read_stream(
    system: LiveSystem,
    api_key: str,
    session_id: str,
    *,
    after: int = 0,
    until: Callable[[dict[str, Any]], bool] | None = None,
    timeout: float = 30,
    last_event_id: str | None = None,
    max_events: int | None = None,
) -> list[dict[str, Any]]:
    """Follow the SSE stream until ``until`` holds for an event (default: a terminal one)."""
    until = until or (lambda e: e["type"] in TERMINAL)
    headers = {"Authorization": f"Bearer {api_key}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    params = {} if last_event_id is not None else {"after": after}
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    with httpx.stream(
        "GET",
        f"{system.url}/v1/sessions/{session_id}/stream",
        params=params,
        headers=headers,
        timeout=httpx.Timeout(timeout, read=timeout),
    ) as response:
        assert response.status_code == 200, response.read()
        for event in iter_sse(response, comments=True):
            if event is not None:
                events.append(event)
                if until(event) or (max_events is not None and len(events) >= max_events):
                    return events
            if time.monotonic() > deadline:
                break
    raise AssertionError(f"stream ended without the expected event; got {[e['type'] for e in events]}")


TERMINAL = {"assistant.final", "assistant.error", "assistant.cancelled"}


@contextmanager
def stub_llm(*args: str) -> Iterator[StubServer]:
    server = StubServer("tests.stubs.llm_server", *args)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def beats_paused(keep: LiveSystem | None = None) -> Iterator[None]:
    """The beats of the live systems (but ``keep``'s) stopped meanwhile and started again after:
    their sweeps and ticks work on the same test database, so a test that ticks or sweeps in
    process with committed data (``transaction=True``) is not raced by a beat doing the same."""
    paused = [s for s in LiveSystem.started if s is not keep and s.beat is not None and s.beat.alive()]
    for other in paused:
        assert other.beat is not None
        other.beat.kill()
    try:
        yield
    finally:
        for other in paused:
            if other in LiveSystem.started:
                other.start_beat()
