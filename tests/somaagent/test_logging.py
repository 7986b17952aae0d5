"""Routine Celery chatter (the beat sweeps) logs at DEBUG; what a user needs to see stays at INFO."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from somaagent.logging import QuietRoutineTasks, did_something
from tests.conversations.support import send
from tests.live import LiveSystem, read_stream, wait_until

SUCCESS = "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s"
RECEIVED = "Task %(name)s[%(id)s] received"


def emitted(record: logging.LogRecord) -> list[str]:
    """What a handler with the filter writes for ``record`` (level and message)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(QuietRoutineTasks())
    handler.handle(record)
    return out.getvalue().splitlines()


def record(logger: str, msg: str, args: Any) -> logging.LogRecord:
    return logging.getLogger(logger).makeRecord(logger, logging.INFO, __file__, 1, msg, args, None)


def success(name: str, return_value: str) -> logging.LogRecord:
    args = {"name": name, "id": "x", "runtime": 0.01, "return_value": return_value}
    return record("celery.app.trace", SUCCESS, (args,))


@pytest.fixture
def debug_level() -> Iterator[None]:
    loggers = [logging.getLogger(n) for n in ("celery.beat", "celery.app.trace", "celery.worker.strategy")]
    before = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    yield
    for lg, level in zip(loggers, before, strict=True):
        lg.setLevel(level)


def test_the_routine_tasks_are_the_beat_schedules() -> None:
    routine = QuietRoutineTasks()._routine()
    assert {"soma.outbox_sweep", "conversation.turn_sweep", "memory.sweep", "memory.replicate"} <= routine
    assert {"tools.sweep", "soma.housekeeping"} <= routine
    assert "conversation.run_turn" not in routine


def test_a_sweep_that_did_nothing_is_quiet_and_one_that_did_something_is_not() -> None:
    beat = record("celery.beat", "Scheduler: Sending due task %s (%s)", ("outbox-sweep", "soma.outbox_sweep"))
    assert emitted(beat) == []
    assert (
        emitted(record("celery.worker.strategy", RECEIVED, ({"name": "soma.outbox_sweep", "id": "x"},))) == []
    )
    assert emitted(success("soma.outbox_sweep", "{'published': 0, 'failed': 0, 'dead': 0}")) == []
    assert emitted(success("tools.sweep", "0")) == []
    assert emitted(success("soma.outbox_sweep", "{'published': 2, 'failed': 0, 'dead': 0}")) == [
        "INFO Task soma.outbox_sweep[x] succeeded in 0.01s: {'published': 2, 'failed': 0, 'dead': 0}"
    ]
    assert emitted(success("soma.housekeeping", "{'outbox': -1}")), "a failed step (-1) is news"


def test_other_tasks_and_other_loggers_are_untouched() -> None:
    received = record("celery.worker.strategy", RECEIVED, ({"name": "conversation.run_turn", "id": "x"},))
    assert emitted(received) == ["INFO Task conversation.run_turn[x] received"]
    assert emitted(success("conversation.run_turn", "None")) != []
    assert emitted(record("somaagent.access", "GET /healthz 200", ())) == ["INFO GET /healthz 200"]


def test_with_debug_on_the_routine_lines_show_as_debug(debug_level: None) -> None:
    beat = record("celery.beat", "Scheduler: Sending due task %s (%s)", ("outbox-sweep", "soma.outbox_sweep"))
    assert emitted(beat) == ["DEBUG Scheduler: Sending due task outbox-sweep (soma.outbox_sweep)"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", False),
        ("None", False),
        ("{'a': 0, 'b': False}", False),
        ("3", True),
        ("{'a': 0, 'b': 1}", True),
        ("'done'", True),
        ("[1, 2", True),
        ("{'a': 'x'}", True),
    ],
)
def test_did_something(value: str, expected: bool) -> None:
    assert did_something(value) is expected


ROUTINE_LOGGERS = ("celery.app.trace", "celery.worker.strategy", "celery.beat")


def _json_lines(text: str) -> list[dict[str, Any]]:
    docs = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                docs.append(json.loads(line))
            except ValueError:
                continue
    return docs


@pytest.mark.integration
def test_the_live_worker_and_beat_keep_sweeps_quiet_and_turns_visible(
    live_system: LiveSystem, tenant_key
) -> None:
    assert live_system.beat is not None and live_system.beat.alive()
    accepted = send(live_system, tenant_key.key, "hello [[reply=fine]]")
    read_stream(live_system, tenant_key.key, accepted["session_id"])
    time.sleep(3)  # the test beat runs its sweeps every second
    routine = QuietRoutineTasks()._routine()
    worker_docs = [
        d for w in live_system.workers for d in _json_lines(w.log_path.read_text(errors="replace"))
    ]
    beat = live_system.beat

    def beat_docs_started() -> list[dict]:
        # Another test's solo() may have restarted the beat moments ago (a new log file).
        docs = _json_lines(beat.log_path.read_text(errors="replace"))
        return docs if any(d.get("message") == "beat: Starting..." for d in docs) else []

    beat_docs = wait_until(beat_docs_started, timeout=20, interval=0.2, what="the beat's start line")
    noisy = []
    for doc in worker_docs + beat_docs:
        if doc.get("level") != "INFO" or doc.get("logger") not in ROUTINE_LOGGERS:
            continue
        data = doc.get("data") or {}
        name = data.get("name") or next((t for t in routine if f"({t})" in doc.get("message", "")), None)
        if name in routine and not ("return_value" in data and did_something(data["return_value"])):
            noisy.append(doc["message"])
    assert not noisy, f"routine lines at INFO: {noisy[:5]}"
    turn_lines = [
        d for d in worker_docs if d.get("level") == "INFO" and "conversation.run_turn" in d.get("message", "")
    ]
    assert turn_lines, "a turn still logs at INFO"
