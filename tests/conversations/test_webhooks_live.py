"""Webhooks end to end (issue 19): a real worker ends a turn, the receiver is told, signed,
and a receiver that fails first is tried again by the beat's sweep until it answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from conversations.webhooks.models import WebhookDelivery, WebhookEndpoint
from somaagent.audit import Actor
from tests.conversations.support import send
from tests.conversations.test_webhooks import verify
from tests.live import LiveSystem, read_stream, wait_until
from tests.stubs.webhook_receiver import Receiver

pytestmark = pytest.mark.integration


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _endpoint(tenant: Any, url: str, events: list[str]) -> tuple[WebhookEndpoint, str]:
    from conversations.webhooks.endpoints import endpoint_create

    endpoint, secret = endpoint_create(
        tenant=tenant, url="https://example.invalid/hook", events=events, actor=Actor.system()
    )
    endpoint.url, endpoint.allow_private = url, True  # an internal receiver, as staff allow it in admin
    endpoint.save()
    return endpoint, secret


def test_a_finished_turn_is_posted_to_the_tenants_endpoint(
    live_system: LiveSystem, tenant_key: Any, receiver: Receiver
) -> None:
    receiver.answers = [503]  # down at first: the sweep tries again
    _, secret = _endpoint(tenant_key.tenant, receiver.url, ["turn.finished", "turn.failed"])
    accepted = send(live_system, tenant_key.key, "Tell the hook [[reply=Done and dusted]]")
    read_stream(live_system, tenant_key.key, accepted["session_id"])
    wait_until(lambda: len(receiver.received) >= 2, timeout=45, what="the delivery tried again")
    first, second = receiver.received[:2]
    assert first.body == second.body and first.headers["soma-delivery"] == second.headers["soma-delivery"]
    assert verify(second.headers["soma-signature"], second.body, secret)
    event = json.loads(second.body)
    assert event["type"] == "turn.finished" and event["tenant_id"] == str(tenant_key.tenant.pk)
    data = event["data"]
    assert data["turn_id"] == accepted["turn_id"] and data["session_id"] == accepted["session_id"]
    assert data["reply"] == "Done and dusted"
    wait_until(
        lambda: WebhookDelivery.objects.filter(status="delivered", subject=accepted["turn_id"]).exists(),
        timeout=10,
        what="the delivery marked delivered",
    )


def test_a_failed_turn_is_posted_as_turn_failed(
    live_system: LiveSystem, tenant_key: Any, receiver: Receiver
) -> None:
    _endpoint(tenant_key.tenant, receiver.url, ["turn.failed"])
    accepted = send(live_system, tenant_key.key, "Break [[status=400]]")
    read_stream(live_system, tenant_key.key, accepted["session_id"])
    wait_until(lambda: receiver.received, timeout=30, what="the turn.failed delivery")
    event = json.loads(receiver.received[0].body)
    assert event["type"] == "turn.failed" and event["data"]["turn_id"] == accepted["turn_id"]
    assert event["data"]["error"]["code"]


def test_a_call_waiting_for_approval_is_posted_as_approval_requested(
    live_system: LiveSystem, tenant_key: Any, receiver: Receiver
) -> None:
    from tests.conversations.approval_support import answer, needs_approval, until_requested

    needs_approval(tenant_key.tenant, "current_time")
    _, secret = _endpoint(tenant_key.tenant, receiver.url, ["approval.requested"])
    accepted = send(live_system, tenant_key.key, "time? [[tool=current_time:{}]]")
    sid = accepted["session_id"]
    requested = until_requested(live_system, tenant_key.key, sid)[-1]["data"]
    wait_until(lambda: receiver.received, timeout=30, what="the approval.requested delivery")
    delivery = receiver.received[0]
    assert delivery.headers["soma-event"] == "approval.requested"
    assert verify(delivery.headers["soma-signature"], delivery.body, secret)
    event = json.loads(delivery.body)
    assert event["type"] == "approval.requested" and event["tenant_id"] == str(tenant_key.tenant.pk)
    data = event["data"]
    assert data["session_id"] == sid and data["turn_id"] == accepted["turn_id"]
    assert data["call_id"] == requested["call_id"] and data["tool_name"] == "current_time"
    assert data["request_id"] == requested["request_id"] and data["expires_at"] == requested["expires_at"]
    assert data["reason"] == requested["reason"] and data["args"] == {}
    # Answered, the turn ends; the endpoint asked only for approval.requested, so nothing more.
    assert answer(live_system, tenant_key.key, sid, requested["call_id"], decision="deny").status_code == 200
    read_stream(live_system, tenant_key.key, sid, after=0, timeout=60)
    assert [json.loads(r.body)["type"] for r in receiver.received] == ["approval.requested"]
