"""Brokers a fault test owns: a redis-server it can stop and restart, a private RabbitMQ vhost.

The session-wide Redis is shared by every test of a run, so a test that takes
the broker away starts its own ``redis-server`` (the binary of the embedded
default) on a free TCP port and points a LiveSystem's ``CELERY_BROKER_URL`` at
it. RabbitMQ tests get a vhost of their own so concurrent runs never share
queues.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.live import free_port, wait_until

RABBIT_URL = "amqp://guest:guest@127.0.0.1:5672/{vhost}"


def _pings(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A throwaway redis-server on 127.0.0.1:<port>; ``stop`` and ``start`` keep the address."""

    def __init__(self) -> None:
        from somaagent.embedded_redis import _server_binary

        self.binary = _server_binary()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="soma-broker-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        wait_until(lambda: _pings(self.port), timeout=20, what="redis broker to start")
        return self

    def stop(self) -> None:
        """Kill the server outright (its queues are lost, as in a crash without persistence)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None
        wait_until(lambda: not _pings(self.port), timeout=10, what="redis broker to stop")

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def redis_broker() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()


# Where packages install rabbitmqctl: /usr/sbin is not on an ordinary user's PATH on Debian.
RABBITMQCTL_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/lib/rabbitmq/bin")


def rabbitmqctl_path() -> str | None:
    return shutil.which("rabbitmqctl") or shutil.which("rabbitmqctl", path=os.pathsep.join(RABBITMQCTL_DIRS))


def rabbit_unavailable() -> str | None:
    """Why the RabbitMQ tests cannot run on this machine (None: they can). A newcomer's
    ``make test`` has no RabbitMQ; those tests are skipped, with this reason, not failed."""
    if rabbitmqctl_path() is None:
        return f"needs RabbitMQ: rabbitmqctl is neither on PATH nor in {', '.join(RABBITMQCTL_DIRS)}"
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
    except OSError:
        return "needs a RabbitMQ server on 127.0.0.1:5672"
    return None


def _rabbitmqctl(*args: str) -> None:
    binary = rabbitmqctl_path()
    assert binary is not None, rabbit_unavailable()
    done = subprocess.run([binary, "-q", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"rabbitmqctl {' '.join(args)} failed: {done.stderr[-2000:]}"


@contextmanager
def rabbit_vhost() -> Iterator[str]:
    """A fresh vhost on the local RabbitMQ; yields its broker URL and deletes it after.
    Skips the test when this machine has no RabbitMQ (``rabbit_unavailable``)."""
    reason = rabbit_unavailable()
    if reason is not None:
        pytest.skip(reason)
    vhost = f"soma-test-{uuid.uuid4().hex[:12]}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield RABBIT_URL.format(vhost=vhost)
    finally:
        _rabbitmqctl("delete_vhost", vhost)
