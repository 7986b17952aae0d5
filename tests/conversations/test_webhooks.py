"""Webhooks (issue 19): signed deliveries of turn events, retried, dead-lettered, replayed."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from conversations.webhooks.delivery import webhook_deliver, webhook_due, webhook_replay
from conversations.webhooks.emit import webhook_emit
from conversations.webhooks.models import WebhookDelivery, WebhookEndpoint
from somaagent.identity.apikeys import api_key_create
from somaagent.models import AuditLog, DeadLetter
from somaagent.secrets import decrypt
from tests.conftest import make_tenant_key
from tests.conversations.api_support import Api, assert_error
from tests.stubs.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db


def verify(header: str, body: bytes, secret: str, *, tolerance: float = 300) -> bool:
    """What a receiver does, written from the documented scheme (not from the sender's code)."""
    parts = [p.split("=", 1) for p in header.split(",")]
    timestamps = [v for k, v in parts if k == "t"]
    if len(timestamps) != 1 or abs(time.time() - int(timestamps[0])) > tolerance:
        return False
    expected = hmac.new(secret.encode(), timestamps[0].encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, v) for k, v in parts if k == "v1")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def admin_api(me: Any) -> Api:
    _, key = api_key_create(tenant=me.tenant, name="admin", scopes=["admin"])
    return Api(key=key)


def _endpoint(tenant: Any, url: str, *, events: list[str] | None = None, **extra: Any) -> WebhookEndpoint:
    from conversations.webhooks.endpoints import endpoint_create
    from somaagent.audit import Actor

    endpoint, _ = endpoint_create(
        tenant=tenant, url="https://example.invalid/hook", events=events or ["*"], actor=Actor.system()
    )
    # An internal receiver (127.0.0.1, plain http): only staff can allow it, in admin.
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=url, allow_private=True, **extra)
    endpoint.refresh_from_db()
    return endpoint


def _emit(tenant: Any, event: str = "turn.finished", subject: str | None = None) -> list[WebhookDelivery]:
    with transaction.atomic():
        webhook_emit(
            tenant_id=tenant.pk, event=event, subject=subject or str(uuid.uuid4()), data={"reply": "hi"}
        )
    return list(WebhookDelivery.objects.filter(tenant_id=tenant.pk).order_by("created_at"))


def _due_now(delivery: WebhookDelivery) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


def test_register_list_change_and_delete_an_endpoint_over_the_api(admin_api: Api, me: Any) -> None:
    created = admin_api.call(
        "post",
        "/v1/webhooks",
        json_body={"url": "https://hooks.example.com/soma", "events": ["turn.finished"]},
    )
    assert created.status_code == 201, created.content
    body = json.loads(created.content)
    assert body["secret"].startswith("whsec_") and body["events"] == ["turn.finished"]
    endpoint = WebhookEndpoint.objects.get(pk=body["id"])
    assert (
        body["secret"] not in endpoint.secret_encrypted
        and decrypt(endpoint.secret_encrypted) == body["secret"]
    )

    listed = json.loads(admin_api.call("get", "/v1/webhooks").content)["webhooks"]
    assert [w["id"] for w in listed] == [body["id"]] and "secret" not in listed[0]
    changed = admin_api.call("patch", f"/v1/webhooks/{body['id']}", json_body={"enabled": False})
    assert changed.status_code == 200 and json.loads(changed.content)["enabled"] is False
    assert AuditLog.objects.filter(target=f"webhook:{body['id']}").count() == 2
    assert admin_api.call("delete", f"/v1/webhooks/{body['id']}").status_code == 204
    assert_error(admin_api.call("get", f"/v1/webhooks/{body['id']}"), 404, "not_found")


@pytest.mark.parametrize(
    "body",
    [
        {"url": "http://hooks.example.com/soma", "events": ["turn.finished"]},  # not https
        {"url": "https://user:pw@hooks.example.com/", "events": ["turn.finished"]},  # credentials
        {"url": "ftp://hooks.example.com/", "events": ["turn.finished"]},
        {"url": "not a url", "events": ["turn.finished"]},
        {"url": "https://hooks.example.com/", "events": ["turn.exploded"]},
        {"url": "https://hooks.example.com/", "events": []},
        {"url": "https://hooks.example.com/", "events": ["*"], "allow_private": True},  # staff only
        {"url": "https://hooks.example.com/", "events": ["*"], "timeout_seconds": 600},
        ["not", "an", "object"],
    ],
)
def test_bad_endpoints_are_refused_and_nothing_is_stored(admin_api: Api, body: Any) -> None:
    response = admin_api.call("post", "/v1/webhooks", json_body=body)
    assert response.status_code == 400, response.content
    assert WebhookEndpoint.objects.count() == 0


def test_only_the_tenants_admins_manage_its_endpoints(admin_api: Api, api: Api, me: Any) -> None:
    created = json.loads(
        admin_api.call(
            "post", "/v1/webhooks", json_body={"url": "https://hooks.example.com/", "events": ["*"]}
        ).content
    )
    assert_error(api.call("get", "/v1/webhooks"), 403, "insufficient_scope")  # a member's key
    other = make_tenant_key()
    _, other_admin = api_key_create(tenant=other.tenant, name="admin", scopes=["admin"])  # type: ignore[arg-type]
    outsider = Api(key=other_admin)
    assert json.loads(outsider.call("get", "/v1/webhooks").content)["webhooks"] == []
    for method in ("get", "patch", "delete"):
        assert_error(outsider.call(method, f"/v1/webhooks/{created['id']}", json_body={}), 404, "not_found")
    assert_error(outsider.call("get", f"/v1/webhooks/{created['id']}/deliveries"), 404, "not_found")
    assert WebhookEndpoint.objects.filter(pk=created["id"], enabled=True).exists()


def test_a_delivery_is_signed_and_a_receiver_can_verify_it(me: Any, receiver: Receiver) -> None:
    endpoint = _endpoint(me.tenant, receiver.url)
    [delivery] = _emit(me.tenant, subject="turn-1")
    assert webhook_deliver(delivery_id=delivery.pk) == "delivered"
    [got] = receiver.received
    secret = decrypt(endpoint.secret_encrypted)
    assert verify(got.headers["soma-signature"], got.body, secret)
    assert not verify(got.headers["soma-signature"], got.body + b" ", secret), "a changed body fails"
    assert not verify(got.headers["soma-signature"], got.body, "whsec_wrong")
    event = json.loads(got.body)
    assert event["type"] == "turn.finished" and event["data"] == {"reply": "hi"}
    assert got.headers["soma-event"] == "turn.finished" and got.headers["soma-delivery"] == str(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.attempts == 1 and delivery.last_status_code == 200


def test_an_event_is_delivered_once_per_endpoint_and_subject(me: Any, receiver: Receiver) -> None:
    _endpoint(me.tenant, receiver.url)
    _endpoint(me.tenant, receiver.url, events=["turn.failed"])  # does not want turn.finished
    _emit(me.tenant, subject="turn-1")
    deliveries = _emit(me.tenant, subject="turn-1")  # a finisher that ran twice
    assert len(deliveries) == 1


def test_a_failing_receiver_is_tried_again_later_until_it_answers(me: Any, receiver: Receiver) -> None:
    receiver.answers = [500, 503]
    receiver.retry_after = "120"
    _endpoint(me.tenant, receiver.url)
    [delivery] = _emit(me.tenant)
    assert webhook_deliver(delivery_id=delivery.pk) == "retry"
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.last_status_code == 500
    assert delivery.next_attempt_at > timezone.now()
    assert webhook_deliver(delivery_id=delivery.pk) == "skipped", "not due yet"
    assert str(delivery.pk) not in webhook_due()

    _due_now(delivery)
    assert str(delivery.pk) in webhook_due()
    assert webhook_deliver(delivery_id=delivery.pk) == "retry"
    delivery.refresh_from_db()
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert wait > 100, f"Retry-After 120 was not honoured: next try in {wait:.0f} s"

    _due_now(delivery)
    assert webhook_deliver(delivery_id=delivery.pk) == "delivered"
    assert len(receiver.received) == 3
    assert len({r.headers["soma-delivery"] for r in receiver.received}) == 1, "one id on every try"
    assert len({json.loads(r.body)["id"] for r in receiver.received}) == 1


def test_past_the_retry_span_a_delivery_is_dead_and_staff_can_replay_it(
    me: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.answers = [500, 500]
    _endpoint(me.tenant, receiver.url)
    [delivery] = _emit(me.tenant)
    assert webhook_deliver(delivery_id=delivery.pk) == "retry"
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        retry_from=timezone.now() - timedelta(hours=7), next_attempt_at=timezone.now()
    )
    assert webhook_deliver(delivery_id=delivery.pk) == "dead"
    letter = DeadLetter.objects.get(topic="webhook.delivery")
    assert letter.event["delivery_id"] == str(delivery.pk) and letter.attempts == 2
    assert str(delivery.pk) not in webhook_due()

    assert webhook_replay(letter) is True
    assert webhook_replay(letter) is False, "pending again: nothing more to replay"
    assert webhook_deliver(delivery_id=delivery.pk) == "delivered"
    letter.refresh_from_db()
    assert letter.replayed_at is not None


@pytest.mark.parametrize("host", ["127.0.0.1", "10.0.0.7", "169.254.169.254", "[::1]", "localhost"])
def test_a_private_address_is_refused_unless_staff_allowed_it(me: Any, host: str) -> None:
    endpoint = _endpoint(me.tenant, f"https://{host}:9/hook")
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(allow_private=False)
    [delivery] = _emit(me.tenant)
    assert webhook_deliver(delivery_id=delivery.pk) == "retry"
    delivery.refresh_from_db()
    assert delivery.last_error.startswith("address refused") and delivery.last_status_code is None


def test_after_a_rotation_both_secrets_sign_for_the_grace_period(
    admin_api: Api, me: Any, receiver: Receiver
) -> None:
    endpoint = _endpoint(me.tenant, receiver.url)
    old = decrypt(endpoint.secret_encrypted)
    rotated = admin_api.call("post", f"/v1/webhooks/{endpoint.pk}/rotate-secret")
    assert rotated.status_code == 200
    new = json.loads(rotated.content)["secret"]
    assert new != old
    [delivery] = _emit(me.tenant)
    assert webhook_deliver(delivery_id=delivery.pk) == "delivered"
    [got] = receiver.received
    assert verify(got.headers["soma-signature"], got.body, new)
    assert verify(got.headers["soma-signature"], got.body, old)

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(previous_secret_expires_at=timezone.now())
    [_, second] = _emit(me.tenant)
    assert webhook_deliver(delivery_id=second.pk) == "delivered"
    assert not verify(receiver.received[1].headers["soma-signature"], receiver.received[1].body, old)


def test_the_delivery_log_over_the_api(admin_api: Api, me: Any, receiver: Receiver) -> None:
    receiver.answers = [502]
    endpoint = _endpoint(me.tenant, receiver.url)
    [delivery] = _emit(me.tenant)
    webhook_deliver(delivery_id=delivery.pk)
    log = json.loads(admin_api.call("get", f"/v1/webhooks/{endpoint.pk}/deliveries").content)["deliveries"]
    assert len(log) == 1
    assert log[0]["status"] == "pending" and log[0]["last_status_code"] == 502 and log[0]["attempts"] == 1


@pytest.mark.django_db(transaction=True)
def test_deliveries_of_one_endpoint_are_tried_side_by_side(receiver: Receiver) -> None:
    """Another try holding its lease (its transaction open) does not make this one skip its own
    delivery: only the delivery's row is locked, not the endpoint both belong to."""
    import threading

    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    me = make_tenant_key()
    endpoint = _endpoint(me.tenant, receiver.url)  # committed: the other thread locks it
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():  # as a concurrent _lease that joined the endpoint would
                WebhookEndpoint.objects.select_for_update().filter(pk=endpoint.pk).first()
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        # The delivery stays uncommitted, so no other worker (the run's live one) can send it first.
        with pytest.raises(_RolledBack), transaction.atomic():
            [delivery] = [d for d in _emit(me.tenant) if d.endpoint_id == endpoint.pk]
            assert webhook_deliver(delivery_id=delivery.pk) == "delivered"
            raise _RolledBack
    finally:
        release.set()
        holder.join()
    assert len(receiver.received) == 1
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()


class _RolledBack(Exception):
    pass


def test_staff_read_each_endpoints_delivery_log_and_replay_a_dead_one_in_admin(
    me: Any, receiver: Receiver
) -> None:
    """From admin only: the endpoint's "log" link lists its deliveries (not another endpoint's),
    and the dead letter's Replay action sends a dead delivery again."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    receiver.answers = [500]
    mine, other = _endpoint(me.tenant, receiver.url), _endpoint(me.tenant, receiver.url)
    with transaction.atomic():
        webhook_emit(tenant_id=me.tenant.pk, event="turn.finished", subject="s1", data={})
    [delivery] = WebhookDelivery.objects.filter(endpoint=mine)
    [elsewhere] = WebhookDelivery.objects.filter(endpoint=other)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(retry_from=timezone.now() - timedelta(days=1))
    assert webhook_deliver(delivery_id=delivery.pk) == "dead"
    letter = DeadLetter.objects.get(topic="webhook.delivery")

    staff = get_user_model().objects.create_user(
        username=f"staff-{uuid.uuid4().hex[:8]}", is_staff=True, is_superuser=True
    )
    client = Client()
    client.force_login(staff)
    endpoints = client.get("/admin/conversations/webhookendpoint/").content.decode()
    log_url = f"/admin/conversations/webhookdelivery/?endpoint__id__exact={mine.pk}"
    assert log_url.replace("&", "&amp;") in endpoints or log_url in endpoints
    page = client.get(log_url).content.decode()
    assert f"/admin/conversations/webhookdelivery/{delivery.pk}/change/" in page and "dead" in page
    assert str(elsewhere.pk) not in page

    replayed = client.post(
        "/admin/somaagent/deadletter/", {"action": "replay", "_selected_action": [letter.pk]}
    )
    assert replayed.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.next_attempt_at <= timezone.now()
    assert webhook_deliver(delivery_id=delivery.pk) == "delivered"


def test_an_endpoint_turned_off_is_sent_nothing_until_it_is_on_again(
    admin_api: Api, me: Any, receiver: Receiver
) -> None:
    """Off (PATCH enabled=false) means no more requests to it, retries of earlier events too;
    they wait, and go once it is on again."""
    receiver.answers = [500]
    endpoint = _endpoint(me.tenant, receiver.url)
    [delivery] = _emit(me.tenant)
    assert webhook_deliver(delivery_id=delivery.pk) == "retry"
    off = admin_api.call("patch", f"/v1/webhooks/{endpoint.pk}", json_body={"enabled": False})
    assert off.status_code == 200, off.content
    _due_now(delivery)
    assert str(delivery.pk) not in webhook_due()
    assert webhook_deliver(delivery_id=delivery.pk) == "skipped"
    assert len(receiver.received) == 1
    admin_api.call("patch", f"/v1/webhooks/{endpoint.pk}", json_body={"enabled": True})
    assert str(delivery.pk) in webhook_due()
    assert webhook_deliver(delivery_id=delivery.pk) == "delivered" and len(receiver.received) == 2
