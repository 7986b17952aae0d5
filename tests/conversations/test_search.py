"""Searching your conversations (issue 18): every word, stemmed, ranked, with highlights, and
only within what the caller may see."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import transaction
from django.test import Client

from conversations.models import EventType, Session
from conversations.services.events import event_append
from tests.conftest import make_tenant_key
from tests.conversations.api_support import Api, assert_error
from tests.somaagent.conftest import member, new_tenant, new_user

pytestmark = pytest.mark.django_db


def _chat(tenant: Any, title: str, *lines: str, owner: Any = None) -> Session:
    session = Session.objects.create(tenant=tenant, title=title, created_by=owner)
    for i, line in enumerate(lines):
        kind = EventType.USER_MESSAGE if i % 2 == 0 else EventType.ASSISTANT_FINAL
        with transaction.atomic():
            event_append(session_id=session.pk, type=kind, data={"message": line}, publish=False)
    return session


def _search(api: Api, q: str, **params: Any) -> dict[str, Any]:
    query = "&".join(f"{k}={v}" for k, v in {"q": q, **params}.items())
    response = api.call("get", f"/v1/search?{query}")
    assert response.status_code == 200, response.content
    return dict(json.loads(response.content))


def test_every_word_must_match_stemmed_with_highlights(api: Api, me: Any) -> None:
    trip = _chat(
        me.tenant, "Trip", "Which trains go from Lisbon to Porto?", "The Alfa Pendular train, hourly."
    )
    _chat(me.tenant, "Cooking", "A recipe for Porto wine sauce?", "Reduce the wine slowly.")
    results = _search(api, "train Porto")["results"]
    assert [(r["session_id"], r["type"]) for r in results] == [(str(trip.pk), "user.message")]
    hit = results[0]
    assert hit["session_title"] == "Trip" and hit["cursor"] == "1"
    marked = {hit["snippet"][a:b] for a, b in hit["highlights"]}
    assert marked == {"trains", "Porto"}  # "train" finds "trains": stemmed
    assert [r["session_title"] for r in _search(api, "wine")["results"]] == ["Cooking", "Cooking"]
    assert _search(api, "submarine")["results"] == []


def test_only_what_the_caller_may_see(api: Api, me: Any) -> None:
    _chat(make_tenant_key().tenant, "Theirs", "secret zebra plans")
    assert _search(api, "zebra")["results"] == []
    # A member sees their own chats only; another member's in the same tenant stay hidden.
    tenant = new_tenant()
    alice, bob = new_user(), new_user()
    member(alice, tenant)
    member(bob, tenant)
    _chat(tenant, "Alice's", "giraffe notes", owner=alice)
    _chat(tenant, "Bob's", "giraffe secrets", owner=bob)
    client = Client()
    client.force_login(alice)
    found = json.loads(client.get("/v1/search?q=giraffe").content)["results"]
    assert [r["session_title"] for r in found] == ["Alice's"]


def test_pages_and_bad_queries(api: Api, me: Any) -> None:
    for i in range(5):
        _chat(me.tenant, f"chat {i}", f"kangaroo number {i}")
    first = _search(api, "kangaroo", limit=3)
    assert len(first["results"]) == 3 and first["next_offset"] == 3
    rest = _search(api, "kangaroo", limit=3, offset=3)
    assert len(rest["results"]) == 2 and rest["next_offset"] is None
    ids = {r["event_id"] for r in first["results"] + rest["results"]}
    assert len(ids) == 5
    assert _search(api, "the and of")["results"] == []  # stop words only: nothing to find
    assert_error(api.call("get", "/v1/search"), 400, "validation_error")
    assert_error(api.call("get", "/v1/search?q=" + "x" * 501), 400, "validation_error")
    assert_error(api.call("get", "/v1/search?q=a&limit=0"), 400, "validation_error")
    assert_error(api.call("get", "/v1/search?q=a&offset=-1"), 400, "validation_error")
    # Query syntax is never passed through: operators are just characters.
    assert _search(api, 'kangaroo & | ! ( ) : * "')["results"] != []


def test_a_deleted_chat_is_no_longer_found(api: Api, me: Any) -> None:
    session = _chat(me.tenant, "Gone", "okapi sightings")
    assert len(_search(api, "okapi")["results"]) == 1
    assert api.call("delete", f"/v1/sessions/{session.pk}").status_code == 204
    assert _search(api, "okapi")["results"] == []


def test_ranking_is_bounded_to_the_most_recent_matches(
    api: Api, me: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ranking reads every candidate's text again: only the most recent matches are ranked, so a
    common word in a long history cannot run the search into its time limit."""
    from django.db import connection

    from conversations.services import search

    if connection.vendor != "postgresql":
        pytest.skip("the bound is on the PostgreSQL ranking (FTS5 ranks from its own index)")
    monkeypatch.setattr(search, "CANDIDATES", 3)
    _chat(me.tenant, "old", "zebra zebra zebra zebra zebra", "zebra zebra zebra zebra")  # rank highest
    _chat(me.tenant, "new", "a zebra", "another zebra", "one more zebra")
    found = _search(api, "zebra")["results"]
    assert [r["session_title"] for r in found] == ["new", "new", "new"]


def test_the_best_match_comes_first_not_the_newest(api: Api, me: Any) -> None:
    """Ranked (PostgreSQL ts_rank; SQLite FTS5 bm25): a message about the words comes before a
    newer one that only mentions them in passing."""
    _chat(me.tenant, "Focused", "Walrus facts: the walrus tusk, walrus diet and walrus habitat.")
    _chat(
        me.tenant,
        "Passing",
        "Many animals live in the Arctic: foxes, bears, seals, hares, owls, wolves, terns, "
        "lemmings, reindeer and also, somewhere along a long list of creatures, a walrus.",
    )
    found = _search(api, "walrus")["results"]
    assert [r["session_title"] for r in found] == ["Focused", "Passing"]
