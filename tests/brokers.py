"""Brokers a fault test owns: a redis-server it can stop and restart, a private RabbitMQ vhost.

The session-wide Redis is shared by every test of a run, so a test that takes
the broker away starts its own ``redis-server`` (the binary of the embedded
default) on a free TCP port and points a LiveSystem's ``CELERY_BROKER_URL`` at
it. RabbitMQ tests get a vhost of their own so concurrent runs never share
queues.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@contextmanager
def rabbit_vhost() -> Iterator[str]:
    """A fresh vhost on the local RabbitMQ; yields its broker URL and deletes it after."""
    vhost = f"soma-test-{uuid.uuid4().hex[:12]}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield RABBIT_URL.format(vhost=vhost)
    finally:
        _rabbitmqctl("delete_vhost", vhost)
