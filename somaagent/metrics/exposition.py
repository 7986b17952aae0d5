"""``GET /metrics`` and the optional metrics port of a worker."""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, start_http_server
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from somaagent.api_errors import error_body
from somaagent.metrics.multiproc import LiveMultiProcessCollector, multiproc_dir
from somaagent.metrics.scrape import ScrapeCollector

log = logging.getLogger(__name__)

_lock = threading.Lock()
_registries: dict[bool, CollectorRegistry] = {}


class _ProcessMetrics:
    """This process's own samples (single-process mode), or the directory's sum."""

    def __init__(self) -> None:
        path = multiproc_dir()
        self._multi = LiveMultiProcessCollector(path) if path else None

    def collect(self) -> Iterable[Any]:
        if self._multi is not None:
            return self._multi.collect()
        return REGISTRY.collect()


def registry(*, with_scrape_gauges: bool) -> CollectorRegistry:
    with _lock:
        reg = _registries.get(with_scrape_gauges)
        if reg is None:
            reg = CollectorRegistry(auto_describe=False)
            reg.register(_ProcessMetrics())  # type: ignore[arg-type]
            if with_scrape_gauges:
                reg.register(ScrapeCollector())  # type: ignore[arg-type]
            _registries[with_scrape_gauges] = reg
        return reg


def _authorised(request: HttpRequest) -> bool:
    token = settings.SOMA_OPS.metrics_token
    if not token:
        return True
    header = request.headers.get("Authorization", "")
    return header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), token.encode())


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _authorised(request):
        return JsonResponse(error_body("not_authenticated", "A valid metrics token is required."), status=401)
    body = generate_latest(registry(with_scrape_gauges=True))
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def serve_port(port: int) -> bool:
    """Serve this host's process metrics on ``port`` (a worker on its own host); False if taken."""
    try:
        start_http_server(port, addr="0.0.0.0", registry=registry(with_scrape_gauges=False))
    except OSError as exc:
        log.warning("metrics port not available", extra={"port": port, "error": repr(exc)})
        return False
    log.info("serving metrics", extra={"port": port})
    return True
