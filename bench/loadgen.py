"""A small HTTP/1.1 load generator (keep-alive, asyncio, raw sockets): run it in its own process.

``python -m bench.loadgen '{"url": ..., "method": "POST", "body": {...}, "headers": {...},
"concurrency": 16, "seconds": 5}'`` prints one JSON line: requests, errors,
status counts, throughput and latency percentiles. Raw sockets rather than an
HTTP library so the generator costs far less CPU than the server it measures.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any
from urllib.parse import urlsplit


def _percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


async def _worker(spec: dict[str, Any], deadline: float, out: dict[str, Any], seq: list[int]) -> None:
    url = urlsplit(spec["url"])
    reader, writer = await asyncio.open_connection(url.hostname, url.port or 80)
    path = url.path + (f"?{url.query}" if url.query else "")
    headers = {"Host": f"{url.hostname}:{url.port}", "Connection": "keep-alive", **spec.get("headers", {})}
    while time.perf_counter() < deadline:
        seq[0] += 1
        body = b""
        if spec.get("body") is not None:
            doc = json.loads(json.dumps(spec["body"]).replace("{n}", str(seq[0])))
            body = json.dumps(doc).encode()
            headers["Content-Type"] = "application/json"
        headers["Content-Length"] = str(len(body))
        request = f"{spec.get('method', 'GET')} {path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        started = time.perf_counter()
        try:
            writer.write(request.encode() + b"\r\n" + body)
            await writer.drain()
            status = await _read_response(reader)
        except (OSError, asyncio.IncompleteReadError) as exc:
            out["errors"].append(repr(exc))
            writer.close()
            reader, writer = await asyncio.open_connection(url.hostname, url.port or 80)
            continue
        out["latencies"].append(time.perf_counter() - started)
        out["status"][status] = out["status"].get(status, 0) + 1
    writer.close()


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"latencies": [], "status": {}, "errors": []}
    seq = [0]
    warmup = float(spec.get("warmup", 1.0))
    if warmup:
        warm: dict[str, Any] = {"latencies": [], "status": {}, "errors": []}
        end = time.perf_counter() + warmup
        await asyncio.gather(*(_worker(spec, end, warm, seq) for _ in range(spec["concurrency"])))
    started = time.perf_counter()
    deadline = started + float(spec["seconds"])
    await asyncio.gather(*(_worker(spec, deadline, out, seq) for _ in range(spec["concurrency"])))
    elapsed = time.perf_counter() - started
    lat = out["latencies"]
    return {
        "concurrency": spec["concurrency"],
        "requests": len(lat),
        "errors": len(out["errors"]),
        "status": out["status"],
        "rps": round(len(lat) / elapsed, 1),
        "p50_ms": round(_percentile(lat, 50) * 1000, 2),
        "p90_ms": round(_percentile(lat, 90) * 1000, 2),
        "p99_ms": round(_percentile(lat, 99) * 1000, 2),
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(json.loads(sys.argv[1])))))
