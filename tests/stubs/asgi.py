"""What the ASGI stub servers share: reading a body, answering, and serving on a port.

Each stub is run as ``python -m tests.stubs.<name> --port 0`` and prints
``PORT <n>`` once its socket is bound, which ``tests.live.StubServer`` reads.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
from typing import Any

import uvicorn


async def read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def respond(
    send: Any,
    status: int,
    body: bytes,
    content_type: str = "application/json",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
            ]
            + (headers or []),
        }
    )
    await send({"type": "http.response.body", "body": body})


def stub_arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    return parser


def serve(app: Any, args: argparse.Namespace, *, no_delay: bool = False) -> None:
    """Bind, announce ``PORT <n>``, and serve ``app`` until killed. ``no_delay``: TCP_NODELAY on
    the sockets it accepts (Linux copies it from this one), so that a small answer's body does not
    wait ~40 ms behind its headers for the client's delayed ACK (Nagle): for stubs that are timed."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if no_delay:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((args.host, args.port))
    # Listening before the port is announced: a client that connects before uvicorn has started
    # waits in the backlog instead of being refused (a test's first request was, now and then).
    sock.listen(128)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))
