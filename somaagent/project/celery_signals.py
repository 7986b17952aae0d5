"""Celery signal handlers: task metrics, the request id across the broker, metrics files.

Connected when ``somaagent.celery`` is imported, so in every process that
publishes (web, beat) or runs tasks (worker children).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from celery import signals

from somaagent.metrics import registry as m
from somaagent.metrics.multiproc import mark_dead
from somaagent.request_id import TASK_HEADER, request_id_var, sane_request_id, task_var

log = logging.getLogger(__name__)

_started: dict[str, tuple[float, Any, Any]] = {}


@signals.before_task_publish.connect
def _carry_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    rid = request_id_var.get()
    if rid and headers is not None:
        headers.setdefault(TASK_HEADER, rid)


def _header(task: Any, name: str) -> Any:
    request = getattr(task, "request", None)
    value = getattr(request, name, None)
    if value is None and request is not None:
        value = (getattr(request, "headers", None) or {}).get(name)
    return value


@signals.task_prerun.connect
def _task_started(task_id: str = "", task: Any = None, **_: Any) -> None:
    name = getattr(task, "name", "unknown")
    rid_token = request_id_var.set(sane_request_id(_header(task, TASK_HEADER)))
    task_token = task_var.set((task_id, name))
    _started[task_id] = (time.perf_counter(), rid_token, task_token)
    m.TASK_RUNS.labels(name).inc()


@signals.task_postrun.connect
def _task_ended(task_id: str = "", task: Any = None, state: str | None = None, **_: Any) -> None:
    started = _started.pop(task_id, None)
    if started is None:
        return
    began, rid_token, task_token = started
    m.TASK_DURATION.labels(getattr(task, "name", "unknown"), state or "UNKNOWN").observe(
        time.perf_counter() - began
    )
    try:
        task_var.reset(task_token)
        request_id_var.reset(rid_token)
    except ValueError:  # reset from another context (should not happen in prefork)
        task_var.set(None)
        request_id_var.set(None)


@signals.task_failure.connect
def _task_failed(sender: Any = None, exception: BaseException | None = None, **_: Any) -> None:
    m.TASK_FAILURES.labels(getattr(sender, "name", "unknown"), type(exception).__name__).inc()


@signals.task_retry.connect
def _task_retried(sender: Any = None, **_: Any) -> None:
    m.TASK_RETRIES.labels(getattr(sender, "name", "unknown")).inc()


@signals.worker_process_shutdown.connect
def _child_exits(pid: int | None = None, **_: Any) -> None:
    mark_dead(pid or os.getpid())


@signals.worker_init.connect
@signals.worker_process_init.connect
def _build_policy_engine(**_: Any) -> None:
    """Compiled at start (once per process), not by the first burst of turns."""
    from somaagent.policy import policy_port

    policy_port()


@signals.worker_ready.connect
def _serve_metrics_port(**_: Any) -> None:
    from django.conf import settings

    port = settings.SOMA_OPS.metrics_port
    if port:
        from somaagent.metrics.exposition import serve_port

        serve_port(port)
