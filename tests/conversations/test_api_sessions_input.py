"""The session endpoints: list, read, rename, delete, events, cancel, stream — good and bad input.

Another tenant's session answers 404 on every endpoint and stays untouched;
bad parameters answer 400; nothing is written by a rejected request.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from conversations.models import EventType, Session, SessionEvent, Turn
from conversations.services.events import event_append
from tests.conftest import make_tenant_key
from tests.conversations.api_support import Api, assert_error, row_counts, session_state

pytestmark = pytest.mark.django_db


def _session_with_events(tenant: Any, *, n_events: int = 3, title: str = "t") -> Session:
    from django.db import transaction

    session = Session.objects.create(tenant=tenant, title=title)
    with transaction.atomic():
        for i in range(n_events):
            event = event_append(
                session_id=session.pk, type=EventType.USER_MESSAGE, data={"message": f"m{i}"}, publish=False
            )
        Turn.objects.create(tenant=tenant, session=session, user_event=event)
    return session


@pytest.fixture
def mine(me: Any) -> Session:
    return _session_with_events(me.tenant, title="mine")


@pytest.fixture
def theirs() -> Session:
    return _session_with_events(make_tenant_key().tenant, title="theirs")


ENDPOINTS = [
    ("get", "/v1/sessions/{id}", None),
    ("patch", "/v1/sessions/{id}", {"title": "stolen"}),
    ("delete", "/v1/sessions/{id}", None),
    ("get", "/v1/sessions/{id}/events", None),
    ("post", "/v1/sessions/{id}/cancel", None),
    ("get", "/v1/sessions/{id}/stream", None),
]


def _unchanged(call: Any) -> Any:
    before = (row_counts(), session_state())
    response = call()
    assert (row_counts(), session_state()) == before, "a rejected request changed data"
    return response


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_another_tenants_session_is_404_everywhere(api, theirs, method, path, body):
    response = _unchanged(lambda: api.call(method, path.format(id=theirs.pk), json_body=body))
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
@pytest.mark.parametrize(
    "session_id", ["not-a-uuid", "123", "5f0c8a8e-3b6d-4c2a-9d7e-1b2c3d4e5f60", "%00", "' OR 1=1 --"]
)
def test_unknown_or_malformed_session_id_is_404(api, mine, method, path, body, session_id):
    response = _unchanged(lambda: api.call(method, path.format(id=session_id), json_body=body))
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize(("method", "path", "body"), [("get", "/v1/sessions", None), *ENDPOINTS])
@pytest.mark.parametrize("auth", [None, "Bearer soma_nope", "Basic eDp5"])
def test_every_endpoint_needs_credentials(mine, method, path, body, auth):
    response = _unchanged(lambda: Api(auth=auth).call(method, path.format(id=mine.pk), json_body=body))
    assert_error(response, 401, "unauthenticated")


def test_list_shows_only_my_sessions_most_recent_first(api, me, theirs):
    a = _session_with_events(me.tenant, title="a")
    b = _session_with_events(me.tenant, title="b")
    body = json.loads(api.call("get", "/v1/sessions").content)
    assert [s["session_id"] for s in body["sessions"]] == [str(b.pk), str(a.pk)]
    assert body["next_offset"] is None
    page = json.loads(api.call("get", "/v1/sessions?limit=1").content)
    assert [s["session_id"] for s in page["sessions"]] == [str(b.pk)] and page["next_offset"] == 1
    page = json.loads(api.call("get", "/v1/sessions?limit=1&offset=1").content)
    assert [s["session_id"] for s in page["sessions"]] == [str(a.pk)] and page["next_offset"] is None


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=201", "limit=abc", "limit=-1", "offset=-1", "offset=x", "offset=" + "9" * 40]
)
def test_list_rejects_bad_paging(api, mine, query):
    error = assert_error(
        _unchanged(lambda: api.call("get", f"/v1/sessions?{query}")), 400, "validation_error"
    )
    assert query.split("=")[0] in error["details"]


def test_read_my_session(api, mine):
    body = json.loads(api.call("get", f"/v1/sessions/{mine.pk}").content)
    assert body["session_id"] == str(mine.pk) and body["title"] == "mine" and body["last_event_id"] == "3"


def test_rename(api, mine):
    response = api.call("patch", f"/v1/sessions/{mine.pk}", json_body={"title": "  new name  "})
    assert response.status_code == 200 and json.loads(response.content)["title"] == "new name"
    mine.refresh_from_db()
    assert mine.title == "new name"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": ""},
        {"title": "   "},
        {"title": "x" * 201},
        {"title": None},
        {"title": "ok", "extra": 1},
        [],
    ],
)
def test_rename_rejects_bad_titles(api, mine, body):
    response = _unchanged(lambda: api.call("patch", f"/v1/sessions/{mine.pk}", json_body=body))
    assert_error(response, 400, "validation_error")


def test_rename_rejects_malformed_json_and_wrong_content_type(api, mine):
    path = f"/v1/sessions/{mine.pk}"
    assert_error(_unchanged(lambda: api.call("patch", path, raw=b"{")), 400, "invalid_json")
    response = _unchanged(lambda: api.call("patch", path, raw=b"title=x", content_type="text/plain"))
    assert_error(response, 415, "unsupported_media_type")


def test_delete_removes_the_session_with_its_events_and_turns(api, mine, theirs):
    response = api.call("delete", f"/v1/sessions/{mine.pk}")
    assert response.status_code == 204
    assert not Session.objects.filter(pk=mine.pk).exists()
    assert not SessionEvent.objects.filter(session_id=mine.pk).exists()
    assert not Turn.objects.filter(session_id=mine.pk).exists()
    assert SessionEvent.objects.filter(session_id=theirs.pk).count() == 3
    assert_error(_unchanged(lambda: api.call("delete", f"/v1/sessions/{mine.pk}")), 404, "not_found")


def test_events_pages_and_cursors(api, mine):
    page = json.loads(api.call("get", f"/v1/sessions/{mine.pk}/events?limit=2").content)
    assert [e["id"] for e in page["events"]] == ["1", "2"] and page["next_cursor"] == "2"
    page = json.loads(api.call("get", f"/v1/sessions/{mine.pk}/events?after=2&limit=2").content)
    assert [e["id"] for e in page["events"]] == ["3"] and page["next_cursor"] is None
    page = json.loads(api.call("get", f"/v1/sessions/{mine.pk}/events?after=99").content)
    assert page["events"] == [] and page["next_cursor"] is None  # (with the branch's leaf and siblings)


@pytest.mark.parametrize(
    "query",
    ["after=x", "after=-1", "after=1.5", "limit=0", "limit=501", "limit=ten", "after=1e3", f"after={2**63}"],
)
def test_events_rejects_bad_cursors_and_limits(api, mine, query):
    response = _unchanged(lambda: api.call("get", f"/v1/sessions/{mine.pk}/events?{query}"))
    assert_error(response, 400, "validation_error")


@pytest.mark.parametrize("cursor", ["x", "-5", "1.0", "+1", " 1", "٣", "9" * 40, str(2**63)])
def test_stream_rejects_bad_cursors(api, mine, cursor):
    for headers, path in (
        ({}, f"/v1/sessions/{mine.pk}/stream?after={cursor}"),
        ({"Last-Event-ID": cursor}, f"/v1/sessions/{mine.pk}/stream"),
    ):
        response = _unchanged(lambda h=headers, p=path: api.call("get", p, headers=h))
        assert_error(response, 400, "validation_error")


def test_cancel_marks_my_queued_turn_cancelled(api, mine):
    turn = Turn.objects.get(session=mine)
    response = api.call("post", f"/v1/sessions/{mine.pk}/cancel")
    assert response.status_code == 202
    assert json.loads(response.content)["cancelled_turns"] == [str(turn.pk)]
    turn.refresh_from_db()
    assert turn.status == Turn.Status.CANCELLED
    last = SessionEvent.objects.filter(session=mine).order_by("-seq").first()
    assert last is not None and last.type == EventType.ASSISTANT_CANCELLED


@pytest.mark.parametrize(
    ("method", "path"),
    [("put", "/v1/sessions/{id}"), ("post", "/v1/sessions/{id}/events"), ("get", "/v1/sessions/{id}/cancel")],
)
def test_wrong_method_is_405(api, mine, method, path):
    response = _unchanged(lambda: api.call(method, path.format(id=mine.pk), json_body={}))
    assert_error(response, 405, "method_not_allowed")


def test_unknown_path_is_a_json_404(api):
    assert_error(api.call("get", "/v1/nothing-here"), 404, "not_found")
