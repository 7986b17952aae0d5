"""The outermost middleware: request id, HTTP latency metric and one access log line.

Sync and async capable, so under ASGI it adds no thread hop. The latency is
labelled with the resolved route pattern (``v1/sessions/<str:session_id>``),
never the raw path, so the label set stays small; a request no route matched is
``<unmatched>``. For a streaming response (SSE) it is the time to the headers.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from somaagent.metrics import http_observed
from somaagent.request_id import REQUEST_ID_HEADER, new_request_id, request_id_var, sane_request_id

access_log = logging.getLogger("somaagent.access")
UNMATCHED = "<unmatched>"


def route_of(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return UNMATCHED
    return match.route or match.view_name or UNMATCHED


class ObservabilityMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self._acall(request)
        started = time.perf_counter()
        token = request_id_var.set(self._request_id(request))
        try:
            response = self.get_response(request)
            self._done(request, response, started)
            return response
        finally:
            request_id_var.reset(token)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        # Each ASGI request runs in its own task (own context), so the id stays
        # set while a streaming response is iterated after this returns.
        request_id_var.set(self._request_id(request))
        response = await self.get_response(request)
        self._done(request, response, started)
        return response

    @staticmethod
    def _request_id(request: HttpRequest) -> str:
        rid = sane_request_id(request.headers.get(REQUEST_ID_HEADER)) or new_request_id()
        request.request_id = rid  # type: ignore[attr-defined]
        return rid

    @staticmethod
    def _done(request: HttpRequest, response: HttpResponseBase, started: float) -> None:
        seconds = time.perf_counter() - started
        response[REQUEST_ID_HEADER] = request.request_id  # type: ignore[attr-defined]
        route = route_of(request)
        method = request.method or ""
        http_observed(route=route, method=method, status=response.status_code, seconds=seconds)
        if settings.SOMA_OPS.access_log:
            access_log.info(
                "%s %s %s",
                method,
                request.path,
                response.status_code,
                extra={
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": round(seconds * 1000, 2),
                },
            )
