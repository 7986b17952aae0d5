"""A tiny OTLP/HTTP trace collector for tests: stores the spans it receives.

Run: ``python -m tests.stubs.otlp_collector --port 0`` (prints ``PORT <n>``).
``POST /v1/traces`` takes the protobuf ``ExportTraceServiceRequest`` the
OpenTelemetry exporter sends; ``GET /_spans`` returns what arrived as JSON:
``[{trace_id, span_id, parent_id, name, kind, service, scope, attributes}]``.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.stubs.asgi import read_body, respond, serve, stub_arguments

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


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = await read_body(receive)
    if scope["path"] == "/_spans":
        await respond(send, 200, json.dumps(SPANS).encode(), "application/json")
        return
    if scope["path"] != "/v1/traces" or scope["method"] != "POST":
        await respond(send, 404, b"{}", "application/json")
        return
    headers = dict(scope["headers"])
    if headers.get(b"content-encoding") == b"gzip":
        body = gzip.decompress(body)
    _record(body)
    await respond(send, 200, ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf")


def main() -> None:
    serve(app, stub_arguments().parse_args())


if __name__ == "__main__":
    main()
