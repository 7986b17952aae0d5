"""Structured JSON log lines on stdout, one object per record.

Every record carries the current request id (and task id/name inside a Celery
task) from ``somaagent.request_id``, and the trace and span ids when tracing is on.
"""

from __future__ import annotations

import ast
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

from somaagent.request_id import context_fields

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        doc.update(context_fields())
        if _trace_ids is not None:
            doc.update(_trace_ids())
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


# Set by somaagent.tracing when OpenTelemetry is on; None keeps the default path free of it.
_trace_ids: Callable[[], dict[str, str]] | None = None


def enable_trace_ids(func: Callable[[], dict[str, str]]) -> None:
    global _trace_ids
    _trace_ids = func


# --- routine Celery chatter -------------------------------------------------------------------
# Celery logs every task twice at INFO (received, succeeded) and beat every send. The sweeps
# beat runs every few seconds would fill the screen with those lines, so for the tasks in the
# beat schedule they are demoted to DEBUG; a run that did something (a non-zero count in its
# return value) still logs its "succeeded" line at INFO.
_TRACE, _RECEIVED, _BEAT = "celery.app.trace", "celery.worker.strategy", "celery.beat"


def did_something(return_repr: object) -> bool:
    """Whether a task's return value (its repr, as Celery logs it) reports any non-zero count;
    anything that is not a count or a dict of counts counts as news."""
    try:
        value = ast.literal_eval(str(return_repr))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return True
    if value is None:
        return False
    counts = value.values() if isinstance(value, dict) else [value]
    if not all(isinstance(c, int | float) for c in counts):
        return True
    return any(counts)


class QuietRoutineTasks(logging.Filter):
    """Celery's per-run lines of the beat-scheduled tasks at DEBUG, unless the run did something.

    ``tasks`` names them; by default the tasks of the running Celery app's beat schedule.
    """

    def __init__(self, tasks: Iterable[str] | None = None) -> None:
        super().__init__()
        self._tasks = frozenset(tasks) if tasks is not None else None

    def _routine(self) -> frozenset[str]:
        if self._tasks is None:
            from celery import current_app

            schedule = current_app.conf.beat_schedule or {}
            self._tasks = frozenset(str(entry["task"]) for entry in schedule.values())
        return self._tasks

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name not in (_TRACE, _RECEIVED, _BEAT) or record.levelno != logging.INFO:
            return True
        args = record.args
        if isinstance(args, Mapping):
            task = args.get("name")
            if record.name == _TRACE and ("return_value" not in args or did_something(args["return_value"])):
                return True  # a retry, or a run that did something
        elif isinstance(args, tuple) and len(args) == 2:  # beat: "Sending due task %s (%s)"
            task = args[1]
        else:
            return True
        if task not in self._routine():
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


# --- outages -----------------------------------------------------------------------------------
# While a dependency is down the same complaint repeats every second: the database pool's
# reconnect attempts, the beat's schedule sync, each refused request. The first one of a kind
# goes out; repeats within a minute are counted and the next one that goes out says how many.
OUTAGE_LOGGERS = frozenset(
    {
        "psycopg.pool",
        "django_celery_beat.schedulers",
        "celery.beat",  # "Message Error: Couldn't apply scheduled task …" while the broker is down
        "somaagent.api_errors",
        "somaagent.outages",
        "conversations.turn.publisher",
        "conversations.turn.watch",
        "conversations.streaming",
        "conversations.stream_buffer",
        "somaagent.ratelimit",
        "somaagent.outbox",
        "somaagent.budgets.services",
        "somaagent.beat",
    }
)


class QuietRepeats(logging.Filter):
    """One line per minute per (logger, message) of the outage loggers; repeats are counted."""

    def __init__(self, window: float = 60.0, loggers: Iterable[str] = OUTAGE_LOGGERS) -> None:
        super().__init__()
        self.window = window
        self.loggers = frozenset(loggers)
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.name not in self.loggers:
            return True
        key = (record.name, str(record.msg)[:80])
        now = time.monotonic()
        with self._lock:
            last, held = self._seen.get(key, (-self.window, 0))
            if now - last < self.window:
                self._seen[key] = (last, held + 1)
                return False
            self._seen[key] = (now, 0)
        if held:
            record.suppressed_repeats = held  # shown by the JSON formatter
        return True
