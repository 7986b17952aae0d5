"""Celery signal handlers: task metrics, the request id across the broker, metrics files,
database connections around each task.

``celery_signals_connect`` connects them; ``somaagent/celery.py`` calls it once the app
is made, so in every process that publishes (web, beat) or runs tasks (worker children).
This module loads with the Celery app, before Django's apps are: the handlers that need
models (the policy engine, the metrics port) import them when they run.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from celery import signals
from django.db import close_old_connections

from somaagent.db_hold import db_release
from somaagent.metrics import registry as m
from somaagent.metrics.multiproc import mark_dead
from somaagent.request_id import TASK_HEADER, request_id_var, sane_request_id, task_var

log = logging.getLogger(__name__)

_started: dict[str, tuple[float, Any, Any]] = {}


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


def _task_started(task_id: str = "", task: Any = None, **_: Any) -> None:
    name = getattr(task, "name", "unknown")
    rid_token = request_id_var.set(sane_request_id(_header(task, TASK_HEADER)))
    task_token = task_var.set((task_id, name))
    _started[task_id] = (time.perf_counter(), rid_token, task_token)
    m.TASK_RUNS.labels(name).inc()


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


def _task_failed(sender: Any = None, exception: BaseException | None = None, **_: Any) -> None:
    m.TASK_FAILURES.labels(getattr(sender, "name", "unknown"), type(exception).__name__).inc()


def _task_retried(sender: Any = None, **_: Any) -> None:
    m.TASK_RETRIES.labels(getattr(sender, "name", "unknown")).inc()


def _child_exits(pid: int | None = None, **_: Any) -> None:
    mark_dead(pid or os.getpid())


def _build_policy_engine(**_: Any) -> None:
    """Compiled at start (once per process), not by the first burst of turns."""
    from somaagent.policy import policy_port

    policy_port()


def _serve_metrics_port(**_: Any) -> None:
    from django.conf import settings

    port = settings.SOMA_OPS.metrics_port
    if port:
        from somaagent.metrics.exposition import serve_port

        serve_port(port)


def _check_database_connections(**_: object) -> None:
    """Close a broken or too old connection before a task (connections are reused: celeryconfig)."""
    close_old_connections()


def _give_back_database_connections(**_: object) -> None:
    """A task thread holds no connection between tasks: hundreds of threads share a small pool."""
    db_release()


def celery_signals_connect() -> None:
    """Connect every handler above (in this order: the metrics and request id first, then the
    database connections, as before)."""
    signals.before_task_publish.connect(_carry_request_id)
    signals.task_prerun.connect(_task_started)
    signals.task_postrun.connect(_task_ended)
    signals.task_failure.connect(_task_failed)
    signals.task_retry.connect(_task_retried)
    signals.worker_process_shutdown.connect(_child_exits)
    signals.worker_init.connect(_build_policy_engine)
    signals.worker_process_init.connect(_build_policy_engine)
    signals.worker_ready.connect(_serve_metrics_port)
    signals.task_prerun.connect(_check_database_connections)
    signals.task_postrun.connect(_give_back_database_connections)
