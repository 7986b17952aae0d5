"""Structured JSON log lines on stdout, one object per record.

Every record carries the current request id (and task id/name inside a Celery
task) from ``somaagent.context``, and the trace and span ids when tracing is on.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from somaagent.context import context_fields

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
_trace_ids = None


def enable_trace_ids(func) -> None:  # type: ignore[no-untyped-def]
    global _trace_ids
    _trace_ids = func
