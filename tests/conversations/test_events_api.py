"""``GET /v1/sessions/{id}/events?before=``: history pages upwards (older turns on demand)."""

from __future__ import annotations

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from conversations.models import EventType
from conversations.services.accept import MessageInput, message_accept
from conversations.services.events import event_append
from tests.conftest import make_tenant_key

pytestmark = pytest.mark.django_db


def test_before_pages_walk_back_to_the_start_with_prev_cursor():
    tk = make_tenant_key()
    sid = message_accept(tenant=tk.tenant, data=MessageInput(message="m0"))["session_id"]
    for k in range(1, 7):
        with transaction.atomic():
            event_append(session_id=sid, type=EventType.USER_MESSAGE, data={"message": f"m{k}"})
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tk.key}")
    url = f"/v1/sessions/{sid}/events"
    seen: list[str] = []
    before = "8"
    while before is not None:
        page = client.get(url, {"before": before, "limit": 3}).json()
        seen = [e["data"]["message"] for e in page["events"]] + seen
        assert page["next_cursor"] is None
        before = page["prev_cursor"]
    assert seen == [f"m{k}" for k in range(7)]
    first = client.get(url, {"before": 8, "limit": 3}).json()
    assert [e["id"] for e in first["events"]] == ["5", "6", "7"] and first["prev_cursor"] == "5"
    assert client.get(url, {"before": 3, "limit": 5}).json()["prev_cursor"] is None
    between = client.get(url, {"before": 8, "after": 4}).json()  # both: the page between them
    assert [e["id"] for e in between["events"]] == ["5", "6", "7"] and between["prev_cursor"] is None
    assert client.get(url, {"before": "x"}).status_code == 400
    other = make_tenant_key()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {other.key}")
    assert client.get(url, {"before": 8}).status_code == 404
