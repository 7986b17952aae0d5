"""Feedback on replies (issue 18): thumbs up or down with a comment and tags, one per author."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import transaction
from django.test import Client

from conversations.models import EventType, Feedback, Session, SessionEvent
from conversations.services.events import event_append
from tests.conftest import make_tenant_key
from tests.conversations.api_support import Api, assert_error
from tests.somaagent.conftest import new_tenant, new_user

pytestmark = pytest.mark.django_db


def _chat(tenant: Any) -> tuple[Session, SessionEvent, SessionEvent]:
    session = Session.objects.create(tenant=tenant)
    with transaction.atomic():
        user = event_append(session_id=session.pk, type=EventType.USER_MESSAGE, data={"message": "hi"})
        reply = event_append(
            session_id=session.pk, type=EventType.ASSISTANT_FINAL, data={"message": "hello", "model": "m-1"}
        )
    return session, user, reply


def _url(session: Session, event: SessionEvent) -> str:
    return f"/v1/sessions/{session.pk}/events/{event.event_id}/feedback"


def test_give_read_replace_and_withdraw_feedback_on_a_reply(api: Api, me: Any) -> None:
    session, _, reply = _chat(me.tenant)
    url = _url(session, reply)
    given = api.call(
        "put", url, json_body={"rating": "down", "comment": "Wrong year.", "tags": ["fact", "fact"]}
    )
    assert given.status_code == 200, given.content
    assert json.loads(given.content) | {"updated_at": None} == {
        "event_id": str(reply.event_id),
        "rating": "down",
        "comment": "Wrong year.",
        "tags": ["fact"],
        "updated_at": None,
    }
    stored = Feedback.objects.get()
    assert (stored.model, stored.tenant_id, stored.session_id) == ("m-1", me.tenant.pk, session.pk)

    again = api.call("put", url, json_body={"rating": "up"})
    assert json.loads(again.content)["rating"] == "up" and Feedback.objects.count() == 1
    assert json.loads(api.call("get", url).content)["rating"] == "up"
    listed = json.loads(api.call("get", f"/v1/sessions/{session.pk}/feedback").content)["feedback"]
    assert [(f["event_id"], f["rating"]) for f in listed] == [(str(reply.event_id), "up")]

    assert api.call("delete", url).status_code == 204
    assert not Feedback.objects.exists()
    assert_error(api.call("get", url), 404, "not_found")


def test_each_author_has_their_own_feedback(me: Any) -> None:
    session, _, reply = _chat(me.tenant)
    other_key = make_tenant_key(name=me.tenant.name).key  # a second key of the same tenant
    Api(key=me.key).call("put", _url(session, reply), json_body={"rating": "up"})
    Api(key=other_key).call("put", _url(session, reply), json_body={"rating": "down"})
    assert sorted(Feedback.objects.values_list("rating", flat=True)) == ["down", "up"]


def test_only_replies_take_feedback_and_bad_input_is_refused(api: Api, me: Any) -> None:
    session, user, reply = _chat(me.tenant)
    assert_error(api.call("put", _url(session, user), json_body={"rating": "up"}), 404, "not_found")
    bad = f"/v1/sessions/{session.pk}/events/not-a-uuid/feedback"
    assert_error(api.call("put", bad, json_body={"rating": "up"}), 404, "not_found")
    url = _url(session, reply)
    for body in (
        {"rating": "meh"},
        {},
        {"rating": "up", "comment": "x" * 2001},
        {"rating": "up", "tags": ["t"] * 11},
        {"rating": "up", "tags": ["x" * 41]},
        {"rating": "up", "tags": "fact"},
        {"rating": "up", "extra": 1},
    ):
        assert_error(api.call("put", url, json_body=body), 400)
    assert not Feedback.objects.exists()


def test_another_tenants_reply_is_not_found(api: Api) -> None:
    session, _, reply = _chat(make_tenant_key().tenant)
    assert_error(api.call("put", _url(session, reply), json_body={"rating": "up"}), 404, "not_found")
    assert_error(api.call("get", _url(session, reply)), 404, "not_found")
    assert not Feedback.objects.exists()


def test_staff_filter_feedback_by_rating_and_model_in_admin(me: Any) -> None:
    session, _, reply = _chat(me.tenant)
    Api(key=me.key).call("put", _url(session, reply), json_body={"rating": "down", "comment": "Too long"})
    staff = Client()
    staff.force_login(new_user("staff-" + new_tenant().name, is_staff=True, is_superuser=True))
    page = staff.get("/admin/conversations/feedback/?rating=down&model=m-1").content.decode()
    assert "Too long" in page
    assert "Too long" not in staff.get("/admin/conversations/feedback/?rating=up").content.decode()


def test_staff_filter_feedback_by_persona_and_tenant_in_admin(me: Any) -> None:
    from somaagent.models import Persona

    helper = Persona.objects.create(tenant=me.tenant, name="Helper")
    with_persona, _, first = _chat(me.tenant)
    Session.objects.filter(pk=with_persona.pk).update(persona=helper)
    with_persona.refresh_from_db()
    plain, _, second = _chat(me.tenant)
    api = Api(key=me.key)
    api.call("put", _url(with_persona, first), json_body={"rating": "up", "comment": "Persona one"})
    api.call("put", _url(plain, second), json_body={"rating": "up", "comment": "Plain one"})
    staff = Client()
    staff.force_login(new_user("staff-" + new_tenant().name, is_staff=True, is_superuser=True))

    def shown(query: str) -> set[str]:
        page = staff.get(f"/admin/conversations/feedback/?{query}")
        assert page.status_code == 200
        return {f.comment for f in page.context["cl"].result_list}

    assert shown(f"persona__id__exact={helper.pk}") == {"Persona one"}
    assert shown(f"tenant__id__exact={me.tenant.pk}") == {"Persona one", "Plain one"}
    assert shown(f"tenant__id__exact={new_tenant().pk}") == set()
    page = staff.get("/admin/conversations/feedback/").content.decode()
    assert "By persona" in page and "By tenant" in page and "By model" in page
