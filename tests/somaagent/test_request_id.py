"""The request id: honoured or generated at the edge, returned, and carried into the turn's task logs."""

from __future__ import annotations

import json
import logging
import re

import pytest
from django.test import Client

from somaagent.logging import JsonFormatter
from somaagent.request_id import (
    adopt_request_id,
    current_request_id,
    request_id_data,
    request_id_scope,
    sane_request_id,
    task_var,
)
from tests.live import read_stream, wait_until


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("abc-123", "abc-123"),
        ("Root=1-5f84c7a6-3b1c;Parent=x", None),  # ';' is not allowed
        ("has space", None),
        ("x" * 128, "x" * 128),
        ("x" * 129, None),
        ("", None),
        (None, None),
        ("ünïcode", None),
        ("-leading-dash", None),
        ("7b0c5a52-9d1e-4d2f-8f8e-0c1b2a3d4e5f", "7b0c5a52-9d1e-4d2f-8f8e-0c1b2a3d4e5f"),
    ],
)
def test_sane_request_ids_are_kept_others_dropped(raw, expected) -> None:
    assert sane_request_id(raw) == expected


def test_the_response_returns_the_clients_id_or_a_new_one() -> None:
    client = Client()
    kept = client.get("/healthz", HTTP_X_REQUEST_ID="client-id-1")
    assert kept["X-Request-ID"] == "client-id-1"
    replaced = client.get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces")
    assert re.fullmatch(r"[0-9a-f]{32}", replaced["X-Request-ID"])
    fresh = client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", fresh["X-Request-ID"])
    assert fresh["X-Request-ID"] != replaced["X-Request-ID"]


def test_json_log_lines_carry_the_request_and_task_ids() -> None:
    record = logging.makeLogRecord({"msg": "hello %s", "args": ("world",), "levelname": "INFO"})
    with request_id_scope("rid-42"):
        token = task_var.set(("task-1", "conversation.run_turn"))
        try:
            doc = json.loads(JsonFormatter().format(record))
        finally:
            task_var.reset(token)
    assert doc["message"] == "hello world"
    assert doc["request_id"] == "rid-42"
    assert doc["task_id"] == "task-1" and doc["task_name"] == "conversation.run_turn"
    assert "request_id" not in json.loads(JsonFormatter().format(record))


def test_a_task_without_the_header_adopts_the_id_stored_with_the_event() -> None:
    assert request_id_data() == {}
    with request_id_scope(None):
        assert adopt_request_id("from-the-event") == "from-the-event"
        assert current_request_id() == "from-the-event"
    with request_id_scope("from-the-header"):
        assert adopt_request_id("from-the-event") == "from-the-header"
        assert request_id_data() == {"request_id": "from-the-header"}
    with request_id_scope(None):
        assert adopt_request_id("bad id") is None
        assert adopt_request_id(None) is None


def _log_lines(path) -> list[dict]:
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
    return lines


@pytest.mark.integration
def test_the_request_id_follows_the_message_into_its_task(live_system, tenant_key):
    rid = f"it-{tenant_key.name}"
    with live_system.client(tenant_key.key) as c:
        r = c.post("/v1/session/message", json={"message": "[[tokens=2]]"}, headers={"X-Request-ID": rid})
    assert r.status_code == 202 and r.headers["X-Request-ID"] == rid
    events = read_stream(live_system, tenant_key.key, r.json()["session_id"])
    assert events[-1]["type"] == "assistant.final"
    by_type = {e["type"]: e for e in events}
    assert by_type["user.message"]["data"]["request_id"] == rid
    assert by_type["assistant.started"]["data"]["request_id"] == rid

    def task_lines() -> list[dict]:
        return [
            doc
            for worker in live_system.workers
            for doc in _log_lines(worker.log_path)
            if doc.get("request_id") == rid
        ]

    lines = wait_until(task_lines, timeout=20, what="worker log lines with the request id")
    names = {d.get("task_name") for d in lines}
    # Tasks the turn itself queued (its memory write, whose delivery asks for replication) carry
    # the id on; sweeps and other requests' tasks never do.
    assert "conversation.run_turn" in names, names
    assert names <= {"conversation.run_turn", "memory.deliver", "memory.replicate"}, names
    assert live_system.web is not None
    access = [d for d in _log_lines(live_system.web.log_path) if d.get("logger") == "somaagent.access"]
    assert any(d.get("request_id") == rid and d["route"] == "v1/session/message" for d in access)
