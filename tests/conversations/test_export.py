"""Exporting chats (issue 18): one chat as lossless JSON or Markdown, all of yours as one JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction

from conversations.models import Attachment, EventType, Feedback, Session, SessionEvent
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


def test_all_my_chats_as_one_markdown_file(api: Api, me: Any) -> None:
    titles = [f"notes {i}" for i in range(22)]  # more than one page of the stream
    for title in titles:
        _chat(me.tenant, title)
    _chat(make_tenant_key().tenant, "someone else's")
    response = api.call("get", "/v1/export?format=markdown")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/markdown")
    assert 'filename="chats.md"' in response["Content-Disposition"]
    text = _body(response).decode()
    chats = text.split("\n---\n\n")
    assert [c.splitlines()[0] for c in chats] == [f"# {t}" for t in titles]
    assert "someone else" not in text and "**You**" in chats[0] and "**SomaAgent**" in chats[0]


def test_bad_format_and_other_tenants_chats_are_refused(api: Api, me: Any) -> None:
    session = _chat(me.tenant, "Trip")
    assert_error(api.call("get", f"/v1/sessions/{session.pk}/export?format=pdf"), 400, "validation_error")
    assert_error(api.call("get", "/v1/export?format=pdf"), 400, "validation_error")
    other = _chat(make_tenant_key().tenant, "theirs")
    assert_error(api.call("get", f"/v1/sessions/{other.pk}/export"), 404, "not_found")


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_the_export_of_all_chats_streams_from_the_real_asgi_server(live_system, tenant_key):
    for i in range(3):
        _chat(tenant_key.tenant, f"live {i}")
    with live_system.client(tenant_key.key) as client:
        response = client.get("/v1/export")
    assert response.status_code == 200
    assert [c["session"]["title"] for c in response.json()["chats"]] == ["live 0", "live 1", "live 2"]


DATA = Path(__file__).parent / "data"


def _messages(session_id: Any) -> list[tuple[str, str]]:
    events = SessionEvent.objects.filter(session_id=session_id).order_by("seq")
    return [(e.type, e.payload["message"]) for e in events]


def test_an_exported_chat_imports_back_as_a_new_chat_with_the_same_messages(api: Api, me: Any) -> None:
    session = _chat(me.tenant, "Trip")
    exported = json.loads(_body(api.call("get", f"/v1/sessions/{session.pk}/export")))
    response = api.call("post", "/v1/import", json_body=exported)
    assert response.status_code == 201, response.content
    (created,) = json.loads(response.content)["sessions"]
    assert (
        created["title"] == "Trip" and created["messages"] == 2 and created["session_id"] != str(session.pk)
    )
    assert _messages(created["session_id"]) == _messages(session.pk)
    copy = Session.objects.get(pk=created["session_id"])
    assert copy.tenant_id == me.tenant.pk and copy.last_seq == 2
    # … and it reads like any chat: its history and its own export.
    again = json.loads(_body(api.call("get", f"/v1/sessions/{copy.pk}/export")))
    assert [e["data"]["message"] for e in again["events"]] == [
        e["data"]["message"] for e in exported["events"]
    ]


def test_all_chats_import_back(api: Api, me: Any) -> None:
    for title in ("one", "two"):
        _chat(me.tenant, title)
    everything = json.loads(_body(api.call("get", "/v1/export")))
    created = json.loads(api.call("post", "/v1/import", json_body=everything).content)["sessions"]
    assert [c["title"] for c in created] == ["one", "two"]


def test_a_chatgpt_export_imports_the_branch_its_user_last_saw(api: Api) -> None:
    doc = json.loads((DATA / "chatgpt_conversations.json").read_text())
    response = api.call("post", "/v1/import", json_body=doc)
    assert response.status_code == 201, response.content
    (created,) = json.loads(response.content)["sessions"]
    assert created["title"] == "Rail trip through Iberia"
    assert _messages(created["session_id"]) == [
        ("user.message", "Plan a rail trip from Lisbon to Barcelona."),
        ("assistant.final", "Take the train to Madrid, then the AVE to Barcelona."),
        ("user.message", "How long does it take?"),
    ]
    final = SessionEvent.objects.get(session_id=created["session_id"], type="assistant.final")
    assert final.payload["model"] == "gpt-4o" and final.occurred_at.timestamp() == 1764806420.0


@pytest.mark.parametrize(
    "doc",
    [
        {"hello": "world"},
        [],
        {"format": "somaagent.chat.v1"},
        {"format": "somaagent.chat.v1", "events": [{"type": "user.message", "data": {"message": 5}}]},
        {
            "format": "somaagent.chat.v1",
            "events": [{"type": "user.message", "data": {"message": "a\u0000b"}}],
        },
        [{"mapping": {"a": {"parent": "b"}, "b": {"parent": "a"}}, "current_node": "a"}],  # a loop
        [{"mapping": {"a": {"parent": "gone"}}, "current_node": "a"}],
        [{"mapping": {}, "current_node": "x"}],
        [{"mapping": "nope", "current_node": "x"}],
        [{"title": 7, "mapping": {"a": {"parent": None}}, "current_node": "a"}],
    ],
)
def test_a_bad_or_hostile_file_is_refused_and_creates_nothing(api: Api, doc: Any) -> None:
    before = (Session.objects.count(), SessionEvent.objects.count())
    assert_error(api.call("post", "/v1/import", json_body=doc), 400)
    assert (Session.objects.count(), SessionEvent.objects.count()) == before


def test_a_file_with_one_bad_chat_among_good_ones_creates_nothing(api: Api, me: Any) -> None:
    good = json.loads((DATA / "chatgpt_conversations.json").read_text())[0]
    bad = {"mapping": {"a": {"parent": "a"}}, "current_node": "a"}
    before = Session.objects.count()
    assert_error(api.call("post", "/v1/import", json_body=[good, good, bad]), 400)
    assert Session.objects.count() == before


def test_the_round_trip_keeps_feedback_and_what_each_reply_answers(api: Api, me: Any) -> None:
    """export → import → export gives the same chat: messages, replies, the message each reply
    answers (so an imported reply can be regenerated) and your feedback."""
    session = _chat(me.tenant, "Trip", reply="Take the train.")
    reply = session.events.get(type=EventType.ASSISTANT_FINAL)
    url = f"/v1/sessions/{session.pk}/events/{reply.event_id}/feedback"
    body = {"rating": "down", "comment": "Which train?", "tags": ["Not helpful"]}
    assert api.call("put", url, json_body=body).status_code == 200
    exported = json.loads(_body(api.call("get", f"/v1/sessions/{session.pk}/export")))
    created = json.loads(api.call("post", "/v1/import", json_body=exported).content)["sessions"][0]
    copy = Session.objects.get(pk=created["session_id"])
    again = json.loads(_body(api.call("get", f"/v1/sessions/{copy.pk}/export")))

    def shape(doc: dict[str, Any]) -> Any:
        position = {e["event_id"]: i for i, e in enumerate(doc["events"])}
        events = [
            (e["type"], e["data"]["message"], position.get(e["data"].get("reply_to"))) for e in doc["events"]
        ]
        feedback = [(position[f["event_id"]], f["rating"], f["comment"], f["tags"]) for f in doc["feedback"]]
        return events, feedback

    assert shape(again) == shape(exported)
    assert shape(again)[1] == [(1, "down", "Which train?", ["Not helpful"])]
    imported_reply = copy.events.get(type=EventType.ASSISTANT_FINAL)
    regenerate = api.call("post", f"/v1/sessions/{copy.pk}/events/{imported_reply.event_id}/regenerate")
    assert regenerate.status_code == 202, regenerate.content


@pytest.mark.parametrize(
    "feedback",
    [
        "all good",
        [{"event_id": "nope", "rating": "up"}],
        [{"event_id": "<user>", "rating": "up"}],  # a message, not a reply
        [{"event_id": "<reply>", "rating": "meh"}],
        [{"event_id": "<reply>", "rating": "up", "comment": "x" * 2001}],
        [{"event_id": "<reply>", "rating": "up", "tags": ["t"] * 11}],
        [{"event_id": "<reply>", "rating": "up"}, {"event_id": "<reply>", "rating": "down"}],
    ],
)
def test_bad_feedback_in_an_export_is_refused_and_creates_nothing(api: Api, me: Any, feedback: Any) -> None:
    session = _chat(me.tenant, "Trip")
    exported = json.loads(_body(api.call("get", f"/v1/sessions/{session.pk}/export")))
    ids = {"<user>": exported["events"][0]["event_id"], "<reply>": exported["events"][1]["event_id"]}
    if isinstance(feedback, list):
        feedback = [{**f, "event_id": ids.get(f["event_id"], f["event_id"])} for f in feedback]
    exported["feedback"] = feedback
    before = Session.objects.count(), Feedback.objects.count()
    assert_error(api.call("post", "/v1/import", json_body=exported), 400, "validation_error")
    assert (Session.objects.count(), Feedback.objects.count()) == before
