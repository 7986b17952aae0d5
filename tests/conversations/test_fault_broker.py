"""Broker faults over real processes: the broker is down when a message is accepted."""

from __future__ import annotations

import time

import pytest

from conversations.models import Turn
from somaagent.models import OutboxMessage
from tests.brokers import redis_broker
from tests.conversations.support import assert_gap_free, own_system, persisted_types, send, stub_env
from tests.live import read_stream, wait_until

pytestmark = pytest.mark.integration


def _outbox_rows(turn_id: str) -> list[OutboxMessage]:
    rows = OutboxMessage.objects.filter(topic="conversation.turn")
    return [m for m in rows if m.payload["turn_id"] == turn_id]


def test_message_accepted_while_broker_down_is_answered_once_it_is_back(llm_stub, live_db, tenant_key):
    with redis_broker() as broker, own_system(stub_env(llm_stub.url, CELERY_BROKER_URL=broker.url)) as system:
        # The system works before the fault.
        warm = send(system, tenant_key.key, "warm up [[tokens=2]]")
        read_stream(system, tenant_key.key, warm["session_id"])

        broker.stop()
        started = time.monotonic()
        with system.client(tenant_key.key, timeout=20) as c:
            r = c.post("/v1/session/message", json={"message": "while the broker is down [[tokens=5]]"})
        print(f"accept with the broker down answered in {(time.monotonic() - started) * 1000:.0f} ms")
        assert r.status_code == 202, r.text
        accepted = r.json()

        # Accepted and durable, but not published: the outbox holds it.
        rows = _outbox_rows(accepted["turn_id"])
        assert len(rows) == 1 and rows[0].published_at is None
        assert Turn.objects.get(pk=accepted["turn_id"]).status == Turn.Status.QUEUED
        time.sleep(3)  # several sweep intervals pass while the broker is away
        assert persisted_types(accepted["session_id"]) == ["user.message"]
        assert all(m.published_at is None for m in _outbox_rows(accepted["turn_id"]))

        broker.start()
        events = read_stream(system, tenant_key.key, accepted["session_id"], timeout=60)
        assert events[-1]["type"] == "assistant.final", [e["type"] for e in events]
        assert events[-1]["data"]["message"] == "t0 t1 t2 t3 t4 "
        assert_gap_free(events)
        wait_until(
            lambda: all(m.published_at for m in _outbox_rows(accepted["turn_id"])),
            timeout=30,
            what="the outbox row to be marked published",
        )
        # Whatever the sweeps and the fast path published, the reply exists once.
        time.sleep(2)
        types = persisted_types(accepted["session_id"])
        assert types == ["user.message", "assistant.started", "assistant.final"], types
        assert Turn.objects.get(pk=accepted["turn_id"]).attempts == 1
