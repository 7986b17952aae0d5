"""Branches over the API (issue 18), in one test transaction: where new events attach, the
listing's parameters, bad and foreign ids, and the export→import round trip."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import transaction

from conversations.models import EventType, Session, SessionEvent, Turn
from conversations.services.events import attach_under, event_append
from conversations.services.shares import share_open
from tests.conftest import make_tenant_key
from tests.conversations.api_support import Api, assert_error

pytestmark = pytest.mark.django_db


def _append(
    session: Session, type: str, message: str, reply_to: SessionEvent | None = None, **kwargs: Any
) -> SessionEvent:
    data = {"message": message} | ({"reply_to": str(reply_to.event_id)} if reply_to else {})
    with transaction.atomic():
        return event_append(session_id=session.pk, type=type, data=data, **kwargs)


def _tree(tenant: Any) -> tuple[Session, dict[str, SessionEvent]]:
    """q1 → a1 → q2 → a2, then an edit of q2 (q2b → a2b) and another reply to q1 (a1b)."""
    session = Session.objects.create(tenant=tenant, title="tree")
    e: dict[str, SessionEvent] = {}
    e["q1"] = _append(session, EventType.USER_MESSAGE, "q1")
    e["a1"] = _append(session, EventType.ASSISTANT_FINAL, "a1", e["q1"])
    e["q2"] = _append(session, EventType.USER_MESSAGE, "q2")
    e["a2"] = _append(session, EventType.ASSISTANT_FINAL, "a2", e["q2"])
    e["q2b"] = _append(session, EventType.USER_MESSAGE, "q2b", attach=attach_under(e["a1"].event_id))
    e["a2b"] = _append(session, EventType.ASSISTANT_FINAL, "a2b", e["q2b"])
    e["a1b"] = _append(
        session, EventType.ASSISTANT_FINAL, "a1b", e["q1"], attach=attach_under(e["q1"].event_id)
    )
    return session, e


def _texts(body: dict[str, Any]) -> list[str]:
    return [ev["data"]["message"] for ev in body["events"]]


def _events(api: Api, session: Session, **params: Any) -> Any:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return api.call("get", f"/v1/sessions/{session.pk}/events?{query}")


def test_events_attach_after_the_leaf_or_where_they_are_put(me: Any) -> None:
    session, e = _tree(me.tenant)
    parents = {k: v.parent_id for k, v in e.items()}
    ids = {k: v.event_id for k, v in e.items()}
    assert parents == {
        "q1": None,
        "a1": ids["q1"],
        "q2": ids["a1"],
        "a2": ids["q2"],
        "q2b": ids["a1"],
        "a2b": ids["q2b"],
        "a1b": ids["q1"],
    }
    session.refresh_from_db()
    assert session.leaf_event_id == ids["a1b"] and session.branched


def test_the_listing_follows_the_active_branch_another_one_or_all(api: Api, me: Any) -> None:
    session, e = _tree(me.tenant)
    active = json.loads(_events(api, session).content)
    assert _texts(active) == ["q1", "a1b"] and active["leaf"] == str(e["a1b"].event_id)
    assert active["siblings"] == {str(e["q1"].event_id): [str(e["a1"].event_id), str(e["a1b"].event_id)]}

    # A branch through an event runs down its newest children to a leaf.
    through_a1 = json.loads(_events(api, session, branch=e["a1"].event_id).content)
    assert _texts(through_a1) == ["q1", "a1", "q2b", "a2b"]
    assert through_a1["siblings"] == {
        str(e["q1"].event_id): [str(e["a1"].event_id), str(e["a1b"].event_id)],
        str(e["a1"].event_id): [str(e["q2"].event_id), str(e["q2b"].event_id)],
    }
    assert _texts(json.loads(_events(api, session, branch=e["q2"].event_id).content)) == [
        "q1",
        "a1",
        "q2",
        "a2",
    ]
    paged = json.loads(_events(api, session, branch=e["a2"].event_id, limit=2).content)
    assert _texts(paged) == ["q1", "a1"] and paged["next_cursor"] == str(e["a1"].seq)
    rest = json.loads(_events(api, session, branch=e["a2"].event_id, after=paged["next_cursor"]).content)
    assert _texts(rest) == ["q2", "a2"] and rest["next_cursor"] is None
    older = json.loads(_events(api, session, branch=e["a2b"].event_id, before=e["a2b"].seq, limit=2).content)
    assert _texts(older) == ["a1", "q2b"] and older["prev_cursor"] == str(e["a1"].seq)

    everything = json.loads(_events(api, session, all=1).content)
    assert _texts(everything) == ["q1", "a1", "q2", "a2", "q2b", "a2b", "a1b"]
    assert [ev["parent_id"] for ev in everything["events"]][:2] == [None, str(e["q1"].event_id)]


def test_bad_branch_parameters_are_clear_errors(api: Api, me: Any) -> None:
    session, e = _tree(me.tenant)
    assert_error(_events(api, session, branch="nope"), 400)
    assert_error(_events(api, session, all="yes"), 400)
    assert_error(_events(api, session, all=1, branch=e["q1"].event_id), 400)
    other, _ = _tree(make_tenant_key().tenant)
    foreign = SessionEvent.objects.filter(session=other).first()
    assert foreign is not None
    assert_error(_events(api, session, branch=foreign.event_id), 404)
    assert_error(_events(api, other, branch=foreign.event_id), 404)


def test_a_message_with_parent_event_id_goes_under_that_event(api: Api, me: Any) -> None:
    session, e = _tree(me.tenant)
    r = api.post_message(
        {"message": "q2c", "session_id": str(session.pk), "parent_event_id": str(e["a1"].event_id)}
    )
    assert r.status_code == 202, r.content
    created = SessionEvent.objects.get(event_id=json.loads(r.content)["event_id"])
    assert created.parent_id == e["a1"].event_id
    root = api.post_message(
        {"message": "new start", "session_id": str(session.pk), "parent_event_id": "root"}
    )
    assert root.status_code == 202, root.content
    assert SessionEvent.objects.get(event_id=json.loads(root.content)["event_id"]).parent_id is None
    plain = api.post_message({"message": "after the leaf", "session_id": str(session.pk)})
    assert SessionEvent.objects.get(event_id=json.loads(plain.content)["event_id"]).parent_id == (
        SessionEvent.objects.get(event_id=json.loads(root.content)["event_id"]).event_id
    )


def test_bad_or_foreign_parent_event_ids_are_refused_and_change_nothing(api: Api, me: Any) -> None:
    session, e = _tree(me.tenant)
    other, _ = _tree(make_tenant_key().tenant)
    foreign = SessionEvent.objects.filter(session=other).first()
    assert foreign is not None
    before = SessionEvent.objects.count(), Turn.objects.count()
    sid = str(session.pk)
    assert_error(api.post_message({"message": "x", "session_id": sid, "parent_event_id": "nope"}), 400)
    assert_error(api.post_message({"message": "x", "session_id": sid, "parent_event_id": 42}), 400)
    assert_error(
        api.post_message({"message": "x", "parent_event_id": str(e["a1"].event_id)}), 404
    )  # new chat
    assert_error(
        api.post_message({"message": "x", "session_id": sid, "parent_event_id": str(foreign.event_id)}), 404
    )
    mine = {"message": "x", "session_id": str(other.pk), "parent_event_id": str(foreign.event_id)}
    assert_error(api.post_message(mine), 404)  # another tenant's session
    unknown = "00000000-0000-4000-8000-000000000000"
    assert_error(api.post_message({"message": "x", "session_id": sid, "parent_event_id": unknown}), 404)
    assert (SessionEvent.objects.count(), Turn.objects.count()) == before


def test_regenerate_queues_another_turn_for_the_message(api: Api, me: Any) -> None:
    session, e = _tree(me.tenant)
    url = f"/v1/sessions/{session.pk}/events/{e['a2'].event_id}/regenerate"
    r = api.call("post", url)
    assert r.status_code == 202, r.content
    body = json.loads(r.content)
    assert body["event_id"] == str(e["q2"].event_id) and body["session_id"] == str(session.pk)
    turn = Turn.objects.get(pk=body["turn_id"])
    assert turn.user_event_id == e["q2"].pk and turn.position is not None and turn.position > e["a1b"].seq
    by_message = api.call("post", f"/v1/sessions/{session.pk}/events/{e['q2'].event_id}/regenerate")
    assert by_message.status_code == 202 and Turn.objects.filter(user_event=e["q2"]).count() == 2
    keyed = {"Idempotency-Key": "regen-1"}
    first = json.loads(api.call("post", url, headers=keyed).content)
    assert json.loads(api.call("post", url, headers=keyed).content) == first
    other_url = f"/v1/sessions/{session.pk}/events/{e['a1'].event_id}/regenerate"
    assert_error(api.call("post", other_url, headers=keyed), 409)


def test_regenerate_refuses_what_is_not_a_message_of_the_callers_session(api: Api, me: Any) -> None:
    session, e = _tree(me.tenant)
    other, _ = _tree(make_tenant_key().tenant)
    foreign = SessionEvent.objects.filter(session=other).first()
    assert foreign is not None
    before = Turn.objects.count()
    base = f"/v1/sessions/{session.pk}/events"
    SessionEvent.objects.filter(pk=e["a1"].pk).update(payload={"message": "a1"})  # answers nothing
    assert_error(api.call("post", f"{base}/{e['a1'].event_id}/regenerate"), 400)
    assert_error(api.call("post", f"{base}/nope/regenerate"), 404)
    assert_error(api.call("post", f"{base}/{foreign.event_id}/regenerate"), 404)
    assert_error(api.call("post", f"/v1/sessions/{other.pk}/events/{foreign.event_id}/regenerate"), 404)
    assert Turn.objects.count() == before


def test_branches_round_trip_through_export_and_import(api: Api, me: Any) -> None:
    session, _ = _tree(me.tenant)
    exported = json.loads(b"".join(api.call("get", f"/v1/sessions/{session.pk}/export")))
    assert all("parent_id" in ev for ev in exported["events"])
    created = json.loads(api.call("post", "/v1/import", json_body=exported).content)["sessions"][0]
    copy = Session.objects.get(pk=created["session_id"])

    def shape(s: Session) -> list[tuple[str, str | None]]:
        rows = list(SessionEvent.objects.filter(session=s).order_by("seq"))
        text = {r.event_id: r.payload["message"] for r in rows}
        return [(r.payload["message"], text.get(r.parent_id) if r.parent_id else None) for r in rows]

    assert shape(copy) == shape(session)
    again = json.loads(b"".join(api.call("get", f"/v1/sessions/{copy.pk}/export")))
    assert [(ev["type"], ev["data"]["message"]) for ev in again["events"]] == [
        (ev["type"], ev["data"]["message"]) for ev in exported["events"]
    ]
    assert _texts(json.loads(_events(api, copy).content)) == ["q1", "a1b"]


def test_an_export_whose_parent_ids_name_no_earlier_event_is_refused(api: Api, me: Any) -> None:
    session, _ = _tree(me.tenant)
    exported = json.loads(b"".join(api.call("get", f"/v1/sessions/{session.pk}/export")))
    exported["events"][1]["parent_id"] = exported["events"][3]["event_id"]  # a later event
    before = Session.objects.count()
    assert_error(api.call("post", "/v1/import", json_body=exported), 400)
    assert Session.objects.count() == before


def test_a_share_link_shows_one_branch(api: Api, me: Any) -> None:
    session, e = _tree(me.tenant)
    url = f"/v1/sessions/{session.pk}/shares"
    active = json.loads(api.call("post", url, json_body={}).content)
    older = json.loads(api.call("post", url, json_body={"up_to_event_id": str(e["a2"].event_id)}).content)
    for link, shown in ((active, ["q1", "a1b"]), (older, ["q1", "a1", "q2", "a2"])):
        token = link["url"].rstrip("/").rsplit("/", 1)[-1]
        _, events = share_open(token=token)
        assert [ev.payload["message"] for ev in events] == shown
