"""Supervising one sandboxed process: bounded output, wall-time kill, nothing left behind.

The child is started in its own session (``start_new_session``: a fork+exec in
C, safe from Celery's threads, unlike ``preexec_fn``): first the reaper
(reaper.py), then helper binaries that apply the confinement before the code
runs. Output beyond the limit is read and thrown away so the child never
blocks on a full pipe. At the wall time the reaper is told to kill the
sandbox (SIGTERM), then the whole process group is killed; the PID namespace
the launchers create takes every other process of the sandbox with it.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from collections.abc import Sequence

from tools.sandbox.port import SandboxLimits, SandboxResult, signal_of

# The launchers themselves get no secrets either: only a PATH.
LAUNCH_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"}
DRAIN_SECONDS = 5.0
REAPER_GRACE_SECONDS = 2.0


class _Capture:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept: list[bytes] = []
        self.size = 0
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.limit - self.size
        if room > 0:
            piece = data[:room]
            self.kept.append(piece)
            self.size += len(piece)

    @property
    def truncated(self) -> bool:
        return self.total > self.size

    def text(self) -> str:
        return b"".join(self.kept).decode("utf-8", errors="replace")


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Ask the reaper to kill the sandbox and reap it; kill the whole group if it does not.

    The group is signalled only while the reaper (its leader) is not yet reaped: after that
    its number may belong to another process group.
    """
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=REAPER_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)


def run_supervised(
    argv: Sequence[str],
    *,
    limits: SandboxLimits,
    isolation: str,
    pass_fds: Sequence[int] = (),
    cwd: str = "/",
) -> SandboxResult:
    started = time.monotonic()
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=LAUNCH_ENV,
        cwd=cwd,
        close_fds=True,
        pass_fds=tuple(pass_fds),
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    captures = {"out": _Capture(limits.max_output_bytes), "err": _Capture(limits.max_output_bytes)}
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ, captures["out"])
    selector.register(proc.stderr, selectors.EVENT_READ, captures["err"])
    deadline = started + limits.wall_seconds
    timed_out = False
    give_up_at: float | None = None
    try:
        while selector.get_map():
            now = time.monotonic()
            if not timed_out and now >= deadline:
                timed_out = True
                _stop(proc)
                give_up_at = now + DRAIN_SECONDS
            if give_up_at is not None and now >= give_up_at:
                break
            wait = 0.5 if timed_out else max(0.0, min(0.5, deadline - now))
            for key, _ in selector.select(timeout=wait):
                data = os.read(key.fd, 65536)
                if data:
                    key.data.add(data)
                else:
                    selector.unregister(key.fileobj)
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()) if not timed_out else DRAIN_SECONDS)
        except subprocess.TimeoutExpired:
            # Output closed but the process lingers (it closed its pipes): the wall time still holds.
            timed_out = True
    finally:
        if proc.poll() is None:
            _stop(proc)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        selector.close()
        proc.stdout.close()
        proc.stderr.close()
    exit_status = None if timed_out else proc.returncode
    out, err = captures["out"], captures["err"]
    return SandboxResult(
        stdout=out.text(),
        stderr=err.text(),
        exit_status=exit_status,
        timed_out=timed_out,
        stdout_truncated=out.truncated,
        stderr_truncated=err.truncated,
        stdout_bytes=out.total,
        stderr_bytes=err.total,
        duration_ms=int((time.monotonic() - started) * 1000),
        isolation=isolation,
        signal=signal_of(exit_status),
    )
