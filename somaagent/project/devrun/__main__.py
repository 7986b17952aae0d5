"""``python -m somaagent.project.devrun``: what ``make run`` runs (see the package docstring)."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import httpx

from somaagent import embedded_redis, environment, local_llm, paths
from somaagent.dev_credentials import dev_credentials_path, dev_credentials_read
from somaagent.ports import port_is_free
from somaagent.project.devrun.banner import banner_text
from somaagent.project.devrun.plan import PlanError, RunPlan, run_plan
from somaagent.project.devrun.readiness import Readiness, readiness_check

BIN = Path(sys.executable).parent
STATUS_EVERY_SECONDS = 30.0
HONCHO_STOP_SECONDS = 20.0


def say(text: str) -> None:
    print(text, flush=True)


def ports_taken(plan: RunPlan) -> str | None:
    """What to do when a port this run needs is in use; None when both are free."""
    if not port_is_free(plan.port):
        return (
            f"Port {plan.port} on 127.0.0.1 is already in use (another `make run`?). Stop what uses it, "
            f"or choose another port: PORT={plan.port + 1} make run"
        )
    if plan.local_model_port is not None and not port_is_free(plan.local_model_port):
        return local_llm.port_taken_message(plan.local_model_port)
    return None


class Launcher:
    def __init__(self, plan: RunPlan) -> None:
        self.plan = plan
        self.env = {**plan.env, "PATH": f"{BIN}{os.pathsep}{plan.env.get('PATH', '')}"}
        self.honcho: subprocess.Popen[bytes] | None = None
        self.honcho_told = False
        self.stop_requested = False

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop_requested = True
        self._stop_signal()

    def _stop_signal(self) -> None:
        """honcho is told to stop once. Only this process signals it (it runs in a session of its
        own, out of reach of the terminal's Ctrl-C): a second signal that lands while honcho is
        printing a line crashes it ("reentrant call inside <stdout>") and leaves its processes
        running."""
        if self.honcho is not None and self.honcho.poll() is None and not self.honcho_told:
            self.honcho_told = True
            self.honcho.send_signal(signal.SIGTERM)

    def run(self) -> int:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # Ctrl-C, a stop, the terminal closed
            signal.signal(signum, self._on_signal)
        held = embedded_redis.acquire(paths.VAR_DIR, label="make run") if self.plan.embedded_redis else None
        try:
            return self._run()
        finally:
            self._stop_honcho()
            if held is not None:
                say(embedded_redis.release(held).message())

    def _manage(self, *command: str) -> int:
        return subprocess.run(
            [sys.executable, "manage.py", *command], cwd=paths.BASE_DIR, env=self.env
        ).returncode

    def _run(self) -> int:
        for command in (("migrate", "--noinput"), ("bootstrap_dev",)):
            code = self._manage(*command)
            if self.stop_requested:
                return 0
            if code != 0:
                say(f"make run: `python manage.py {' '.join(command)}` failed (its output is above).")
                return code
        metrics = Path(self.env["PROMETHEUS_MULTIPROC_DIR"])
        shutil.rmtree(metrics, ignore_errors=True)
        metrics.mkdir(parents=True)
        say(
            f"Starting {', '.join(self.plan.processes)}; the web listens on {self.plan.url}/. "
            "The login and API key follow once everything answers."
        )
        self.honcho = subprocess.Popen(
            self.plan.honcho_argv(BIN, paths.BASE_DIR / "Procfile"),
            cwd=paths.BASE_DIR,
            env=self.env,
            start_new_session=True,  # signalled by this process only (_stop_signal)
        )
        if self.stop_requested:  # a signal arrived while honcho was being started
            self._stop_signal()
        state = self._wait_until_ready()
        if state is not None:
            credentials_file = dev_credentials_path(paths.VAR_DIR)
            say(
                banner_text(
                    plan=self.plan,
                    credentials=dev_credentials_read(credentials_file),
                    credentials_file=credentials_file,
                    readyz=state.readyz,
                )
            )
        code = self.honcho.wait()
        if self.stop_requested:
            return 0
        say(f"make run: a process stopped (honcho exited with {code}); see its last lines above.")
        return code or 1

    def _wait_until_ready(self) -> Readiness | None:
        """Poll until everything answers; None if honcho ended or a stop was asked for first."""
        assert self.honcho is not None
        last_status = time.monotonic()
        with httpx.Client(timeout=httpx.Timeout(5.0, connect=1.0)) as client:
            while self.honcho.poll() is None and not self.stop_requested:
                try:
                    state = readiness_check(self.plan, client)
                except Exception as exc:  # e.g. the broker not answering yet: report it, keep waiting
                    state = Readiness(waiting_for=[f"the readiness check ({exc!r:.200})"])
                if state.ready:
                    return state
                if time.monotonic() - last_status > STATUS_EVERY_SECONDS:
                    say(f"make run: still waiting for {'; '.join(state.waiting_for)}")
                    last_status = time.monotonic()
                time.sleep(1.0)
        return None

    def _stop_honcho(self) -> None:
        """honcho stops every process it started (SIGTERM, then SIGKILL after 5 s)."""
        if self.honcho is None or self.honcho.poll() is not None:
            return
        self._stop_signal()
        try:
            self.honcho.wait(timeout=HONCHO_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.honcho.kill()
            self.honcho.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m somaagent.project.devrun", description="make run's launcher"
    )
    parser.add_argument("--local-model", choices=("0", "1"), default="1")
    parser.add_argument("processes", nargs="+")
    args = parser.parse_args(argv)
    environment.load_dotenv_file()
    try:
        plan = run_plan(
            os.environ,
            processes=args.processes,
            local_model=args.local_model == "1",
            local_model_installed=local_llm.installed(),
            metrics_dir=paths.VAR_DIR / "prometheus",
        )
    except PlanError as exc:
        say(f"make run: {exc}")
        return 2
    problem = ports_taken(plan)
    if problem is not None:
        say(f"make run: {problem}")
        return 2
    return Launcher(plan).run()


if __name__ == "__main__":
    raise SystemExit(main())
