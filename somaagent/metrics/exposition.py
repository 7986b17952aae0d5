"""``GET /metrics`` and the optional metrics port of a worker."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import make_server

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, make_wsgi_app
from prometheus_client.exposition import (
    CONTENT_TYPE_LATEST,
    ThreadingWSGIServer,
    _get_best_family,
    _SilentHandler,
)

from somaagent.api_errors import error_body
from somaagent.metrics.multiproc import LiveMultiProcessCollector, multiproc_dir
from somaagent.metrics.scrape import ScrapeCollector
from somaagent.ops_auth import metrics_allowed

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
            reg.register(_ProcessMetrics())
            if with_scrape_gauges:
                reg.register(ScrapeCollector())
            _registries[with_scrape_gauges] = reg
        return reg


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request.headers.get("Authorization", "")):
        return JsonResponse(error_body("not_authenticated", "A valid metrics token is required."), status=401)
    body = generate_latest(registry(with_scrape_gauges=True))
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _token_required(app: Callable[..., Any]) -> Callable[..., Any]:
    """The WSGI metrics app behind the operators' token (when one is set)."""

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if metrics_allowed(environ.get("HTTP_AUTHORIZATION", "")):
            return app(environ, start_response)
        body = json.dumps(error_body("not_authenticated", "A valid metrics token is required.")).encode()
        start_response("401 Unauthorized", [("Content-Type", "application/json")])
        return [body]

    return guarded


def serve_port(port: int) -> bool:
    """Serve this host's process metrics on ``port`` (a worker on its own host); False if taken
    or refused. It binds ``SOMA_METRICS_ADDR`` (loopback by default) and asks for the metrics
    token when one is set; on any other address it refuses to serve without a token."""
    cfg = settings.SOMA_OPS
    addr = cfg.metrics_addr
    if addr not in LOOPBACK and not cfg.metrics_token:
        log.error(
            "metrics port refused: SOMA_METRICS_ADDR is not a loopback address and SOMA_METRICS_TOKEN "
            "is not set",
            extra={"port": port, "addr": addr},
        )
        return False
    app = _token_required(make_wsgi_app(registry(with_scrape_gauges=False)))
    try:
        server = type(
            "MetricsServer", (ThreadingWSGIServer,), {"address_family": _get_best_family(addr, port)[0]}
        )
        httpd: ThreadingWSGIServer = make_server(addr, port, app, server, handler_class=_SilentHandler)
    except OSError as exc:
        log.warning("metrics port not available", extra={"port": port, "error": repr(exc)})
        return False
    threading.Thread(target=httpd.serve_forever, name="metrics-port", daemon=True).start()
    log.info("serving metrics", extra={"port": port, "addr": addr, "token": bool(cfg.metrics_token)})
    return True
