"""OpenTelemetry tracing of Django, Celery and outgoing httpx calls, when asked for.

On only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``)
is set: spans go to that collector over OTLP/HTTP. Otherwise nothing of
OpenTelemetry is even imported. A trace starts at the HTTP request, follows the
turn's task through the broker (context in the message headers) and ends at the
model call, so one trace id links gateway → task → LLM. The standard
``OTEL_*`` variables (service name, sampler, batch delay, headers) apply.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

from somaagent import logging as soma_logging

log = logging.getLogger(__name__)

_lock = threading.Lock()
_enabled = False


def tracing_requested() -> bool:
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    )


def process_role() -> str:
    """web, worker, beat, flower or manage: the service name's suffix."""
    argv = " ".join(os.path.basename(a) for a in sys.argv[:4])
    for role in ("worker", "beat", "flower"):
        if "celery" in argv and role in sys.argv:
            return role
    if "manage" in argv:
        return "manage"
    return "web"


def tracing_setup() -> bool:
    """Install the tracer provider and the instrumentations once per process; True when on."""
    global _enabled
    if not tracing_requested():
        return False
    with _lock:
        if _enabled:
            return True
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        from opentelemetry.instrumentation.django import DjangoInstrumentor
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        role = process_role()
        attributes = {"soma.process": role}
        if not os.environ.get("OTEL_SERVICE_NAME"):
            attributes["service.name"] = f"somaagent-{role}"
        provider = TracerProvider(resource=Resource.create(attributes))
        # The batch processor re-creates its thread in forked children (Celery prefork).
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        DjangoInstrumentor().instrument()
        CeleryInstrumentor().instrument()
        HTTPXClientInstrumentor().instrument()

        soma_logging.enable_trace_ids(_trace_ids)
        _enabled = True
        log.info("tracing on", extra={"service_role": role})
        return True


def _trace_ids() -> dict[str, str]:
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return {}
    return {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}
