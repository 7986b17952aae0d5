"""Helpers for the operations tests: reading /metrics (a private RabbitMQ vhost: tests/brokers.py),
and the ASGI scope of a plain HTTP request for tests that call an ASGI application directly."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str, **kwargs: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(sample name, sorted labels): value}`` from a Prometheus text endpoint."""
    response = httpx.get(url, timeout=10, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float | None:
    """The sum of the samples named ``name`` whose labels include ``labels`` (None if none)."""
    found = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls)]
    return sum(found) if found else None


def http_scope(path: str, *, method: str = "GET", body: bytes = b"", root_path: str = "") -> dict[str, Any]:
    """The ASGI scope of an HTTP/1.1 request from 127.0.0.1 to ``path`` with a ``body``."""
    return {
        "root_path": root_path,
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"localhost"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
