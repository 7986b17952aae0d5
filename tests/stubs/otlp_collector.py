"""A tiny OTLP/HTTP trace collector for tests: stores the spans it receives.

Run: ``python -m tests.stubs.otlp_collector --port 0`` (prints ``PORT <n>``).
``POST /v1/traces`` takes the protobuf ``ExportTraceServiceRequest`` the
OpenTelemetry exporter sends; ``GET /_spans`` returns what arrived as JSON:
``[{trace_id, span_id, parent_id, name, kind, service, scope, attributes}]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import socket
from typing import Any

import uvicorn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

SPANS: list[dict[str, Any]] = []


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    raw = getattr(v, kind)
    if kind == "array_value":
        return [_value(x) for x in raw.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in raw.values}
    if kind == "bytes_value":
        return raw.hex()
    return raw


def _record(body: bytes) -> None:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    for rs in request.resource_spans:
        resource = {a.key: _value(a.value) for a in rs.resource.attributes}
        for ss in rs.scope_spans:
            for span in ss.spans:
                SPANS.append(
                    {
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_id": span.parent_span_id.hex(),
                        "name": span.name,
                        "kind": span.kind,
                        "service": resource.get("service.name"),
                        "scope": ss.scope.name,
                        "attributes": {a.key: _value(a.value) for a in span.attributes},
                    }
                )


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send(send: Any, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = await _read_body(receive)
    if scope["path"] == "/_spans":
        await _send(send, 200, json.dumps(SPANS).encode(), b"application/json")
        return
    if scope["path"] != "/v1/traces" or scope["method"] != "POST":
        await _send(send, 404, b"{}", b"application/json")
        return
    headers = dict(scope["headers"])
    if headers.get(b"content-encoding") == b"gzip":
        body = gzip.decompress(body)
    _record(body)
    await _send(send, 200, ExportTraceServiceResponse().SerializeToString(), b"application/x-protobuf")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    asyncio.run(server.serve(sockets=[sock]))


if __name__ == "__main__":
    main()
