"""Exporting chats (issue 18): one chat as lossless JSON or Markdown, all of yours as one JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import transaction

from conversations.models import Attachment, EventType, Session
from conversations.services.events import event_append
from tests.conftest import make_tenant_key
from tests.conversations.api_support import Api, assert_error

pytestmark = pytest.mark.django_db


def _chat(tenant: Any, title: str, *, reply: str = "Hello **there**") -> Session:
    session = Session.objects.create(tenant=tenant, title=title)
    with transaction.atomic():
        user = event_append(session_id=session.pk, type=EventType.USER_MESSAGE, data={"message": "hi"})
        event_append(
            session_id=session.pk,
            type=EventType.ASSISTANT_FINAL,
            data={"message": reply, "model": "m-1", "reply_to": str(user.event_id)},
        )
    return session


def _body(response: Any) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response)  # Django consumes the async stream for a sync client
    return bytes(response.content)


def test_one_chat_as_lossless_json_with_attachments_and_feedback(api: Api, me: Any) -> None:
    session = _chat(me.tenant, "Trip")
    Attachment.objects.create(
        tenant=me.tenant,
        session=session,
        filename="a.txt",
        mime="text/plain",
        size=3,
        sha256="0" * 64,
        content=b"abc",
    )
    reply = session.events.get(type=EventType.ASSISTANT_FINAL)
    url = f"/v1/sessions/{session.pk}/events/{reply.event_id}/feedback"
    api.call("put", url, json_body={"rating": "up", "tags": ["clear"]})

    response = api.call("get", f"/v1/sessions/{session.pk}/export")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="chat-{session.pk}.json"'
    doc = json.loads(_body(response))
    assert doc["format"] == "somaagent.chat.v1" and doc["session"]["title"] == "Trip"
    events = json.loads(api.call("get", f"/v1/sessions/{session.pk}/events").content)["events"]
    assert doc["events"] == events  # the same envelopes as the history API, whole
    assert doc["attachments"] == [
        {
            "id": doc["attachments"][0]["id"],
            "filename": "a.txt",
            "mime": "text/plain",
            "size": 3,
            "sha256": "0" * 64,
            "status": "clean",
        }
    ]
    assert doc["feedback"] == [
        {"event_id": str(reply.event_id), "rating": "up", "comment": "", "tags": ["clear"]}
    ]


def test_one_chat_as_markdown(api: Api, me: Any) -> None:
    session = _chat(me.tenant, "Trip")
    response = api.call("get", f"/v1/sessions/{session.pk}/export?format=markdown")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/markdown")
    text = _body(response).decode()
    assert text.startswith("# Trip\n")
    assert "**You**" in text and "\nhi\n" in text
    assert "**SomaAgent** (m-1)" in text and "Hello **there**" in text


def test_all_my_chats_as_one_json_document(api: Api, me: Any) -> None:
    titles = [f"chat {i}" for i in range(25)]  # more than one page of the stream
    for title in titles:
        _chat(me.tenant, title)
    _chat(make_tenant_key().tenant, "someone else's")
    response = api.call("get", "/v1/export")
    assert response.status_code == 200
    doc = json.loads(_body(response))
    assert doc["format"] == "somaagent.chat.v1"
    assert [c["session"]["title"] for c in doc["chats"]] == titles
    assert all(len(c["events"]) == 2 for c in doc["chats"])


def test_bad_format_and_other_tenants_chats_are_refused(api: Api, me: Any) -> None:
    session = _chat(me.tenant, "Trip")
    assert_error(api.call("get", f"/v1/sessions/{session.pk}/export?format=pdf"), 400, "validation_error")
    assert_error(api.call("get", "/v1/export?format=markdown"), 400, "validation_error")
    other = _chat(make_tenant_key().tenant, "theirs")
    assert_error(api.call("get", f"/v1/sessions/{other.pk}/export"), 404, "not_found")


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_the_export_of_all_chats_streams_from_the_real_asgi_server(live_system, tenant_key):  # type: ignore[no-untyped-def]
    for i in range(3):
        _chat(tenant_key.tenant, f"live {i}")
    with live_system.client(tenant_key.key) as client:
        response = client.get("/v1/export")
    assert response.status_code == 200
    assert [c["session"]["title"] for c in response.json()["chats"]] == ["live 0", "live 1", "live 2"]
