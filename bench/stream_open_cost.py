"""The web process's CPU for one SSE stream, opened and closed, next to one accept.

    python -m bench.stream_open_cost [--streams 200] [--rounds 4]

Starts the real web process (uvicorn on ``somaagent.asgi``, as the Procfile does;
no worker), then per round: N accepts at once (each a new session), then N SSE
streams at once, one per session, each read until its ``user.message`` (the
replay) and closed, as a browser tab that loads a chat and goes away. Reported
per round: the web process's CPU (user + system, every thread, from ``/proc``)
per accept and per stream. The stream's share is its whole life: credentials,
the session, the stream slot, the replay, the frames, and the teardown when the
client goes (slot released, Redis read cancelled, response closed). Uses
DATABASE_URL / REDIS_URL like the app (PostgreSQL for numbers that mean
something); the queued turns and the run's Redis keys are deleted after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import uuid

from bench.common import migrated_django_with_own_prefix, run_header


async def _accept(host: str, port: int, key: str, n: int) -> str:
    reader, writer = await asyncio.open_connection(host, port)
    body = json.dumps({"message": f"open cost {n}"}).encode()
    writer.write(
        f"POST /v1/session/message HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    answer = await reader.read()
    writer.close()
    found = re.search(rb'"session_id":\s*"([^"]+)"', answer)
    if found is None:
        raise RuntimeError(f"not accepted: {answer[:200]!r}")
    return found.group(1).decode()


async def _stream(host: str, port: int, key: str, session_id: str) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"GET /v1/sessions/{session_id}/stream HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {key}\r\n\r\n".encode()
    )
    seen = b""
    while b"user.message" not in seen:
        piece = await asyncio.wait_for(reader.read(4096), 30)
        if not piece:
            raise RuntimeError(f"stream ended early: {seen[:200]!r}")
        seen += piece
    writer.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    migrated_django_with_own_prefix()
    from bench.accept_cost import _cpu_seconds
    from bench.turn_latency import _drop_redis_keys, _forget_earlier_runs
    from somaagent.identity.apikeys import api_key_create, tenant_get_or_create
    from tests.live import LiveSystem

    _forget_earlier_runs()
    _, key = api_key_create(tenant=tenant_get_or_create(name=f"bench-open-{uuid.uuid4().hex[:6]}"), name="b")
    live = LiveSystem(env={"SOMA_REDIS_PREFIX": os.environ["SOMA_REDIS_PREFIX"]})
    live.start_web()
    assert live.web is not None
    pid = live.web.popen.pid
    host, port = "127.0.0.1", live.port
    rows = []

    async def rounds() -> None:
        warm = await asyncio.gather(*[_accept(host, port, key, i) for i in range(20)])
        await asyncio.gather(*[_stream(host, port, key, s) for s in warm])
        for _ in range(args.rounds):
            before = _cpu_seconds(pid)
            sessions = await asyncio.gather(*[_accept(host, port, key, i) for i in range(args.streams)])
            accepted = _cpu_seconds(pid)
            await asyncio.gather(*[_stream(host, port, key, s) for s in sessions])
            await asyncio.sleep(0.5)  # the teardowns finish
            rows.append(
                (
                    (accepted - before) * 1000 / args.streams,
                    (_cpu_seconds(pid) - accepted) * 1000 / args.streams,
                )
            )

    try:
        asyncio.run(rounds())
    finally:
        live.stop()
        _forget_earlier_runs()
        _drop_redis_keys()  # this run's stream buffers and queues (they would stay until their TTL)
    print(run_header("bench.stream_open_cost"))
    print()
    print(
        f"| round | web CPU per accept | web CPU per stream ({args.streams} at once; open, replay, close) |"
    )
    print("| ---: | ---: | ---: |")
    for i, (accept, stream) in enumerate(rows, 1):
        print(f"| {i} | {accept:.2f} ms | {stream:.2f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
