"""Read-only share links (issue 18): a snapshot anyone with the link can read, until revoked."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import transaction
from django.test import Client

from conversations.models import EventType, Session, ShareLink
from conversations.services.events import event_append
from somaagent.flags.services import flag_set
from tests.conftest import make_tenant_key
from tests.conversations.api_support import Api, assert_error

pytestmark = pytest.mark.django_db


def _say(session: Session, kind: str, text: str) -> Any:
    with transaction.atomic():
        return event_append(session_id=session.pk, type=kind, data={"message": text, "model": "m-1"})


def _chat(tenant: Any) -> Session:
    session = Session.objects.create(tenant=tenant, title="Trip <b>plans</b>")
    _say(session, EventType.USER_MESSAGE, "Where should I go?")
    _say(session, EventType.ASSISTANT_FINAL, "Try <script>alert(1)</script> Porto.")
    return session


def _share(api: Api, session: Session, **body: Any) -> dict[str, Any]:
    response = api.call("post", f"/v1/sessions/{session.pk}/shares", json_body=body)
    assert response.status_code == 201, response.content
    return dict(json.loads(response.content))


def _open(url: str) -> Any:
    return Client().get(url.replace("http://testserver", ""))  # no login


def test_anyone_with_the_link_reads_the_snapshot_and_nothing_else(api: Api, me: Any) -> None:
    session = _chat(me.tenant)
    link = _share(api, session)
    assert link["url"].startswith("http://testserver/s/") and link["up_to"] == "2"
    _say(session, EventType.USER_MESSAGE, "A later secret")  # after the snapshot

    page = _open(link["url"])
    assert page.status_code == 200
    html = page.content.decode()
    assert "Where should I go?" in html and "Porto." in html
    assert "A later secret" not in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html  # text, never markup
    assert "Trip &lt;b&gt;plans&lt;/b&gt;" in html
    assert 'name="robots" content="noindex, nofollow"' in html and page["X-Robots-Tag"] == "noindex, nofollow"
    assert "composer" not in html and me.tenant.name not in html  # no way to write, nothing of the tenant
    # Only our own scripts (the chat's Markdown renderer), nothing inline, nothing else.
    policy = page["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self';" in policy
    assert "<script>" not in html


def test_a_link_up_to_a_chosen_message(api: Api, me: Any) -> None:
    session = _chat(me.tenant)
    first = session.events.get(seq=1)
    html = _open(_share(api, session, up_to_event_id=str(first.event_id))["url"]).content.decode()
    assert "Where should I go?" in html and "Porto." not in html


def test_list_and_revoke_your_links(api: Api, me: Any) -> None:
    session = _chat(me.tenant)
    link = _share(api, session)
    listed = json.loads(api.call("get", "/v1/shares").content)["shares"]
    assert [s["id"] for s in listed] == [link["id"]]
    assert api.call("delete", f"/v1/shares/{link['id']}").status_code == 204
    assert _open(link["url"]).status_code == 404
    assert json.loads(api.call("get", "/v1/shares").content)["shares"] == []
    assert_error(api.call("delete", f"/v1/shares/{link['id']}"), 404, "not_found")


def test_unknown_tokens_other_tenants_and_bad_input(api: Api, me: Any) -> None:
    assert _open("/s/not-a-real-token/").status_code == 404
    # Text PostgreSQL cannot compare (issue 14 item 6): a NUL in the token was a DataError, a 500.
    for hostile in ("/s/%00/", "/s/a%00b/", "/s/%ED%A0%80/", "/s/" + "a" * 65 + "/"):
        assert _open(hostile).status_code == 404, hostile
    theirs = _chat(make_tenant_key().tenant)
    assert_error(api.call("post", f"/v1/sessions/{theirs.pk}/shares", json_body={}), 404, "not_found")
    mine = _chat(me.tenant)
    bad = api.call("post", f"/v1/sessions/{mine.pk}/shares", json_body={"up_to_event_id": "nope"})
    assert_error(bad, 400, "validation_error")
    elsewhere = str(theirs.events.get(seq=1).event_id)  # an event, but of another chat
    assert_error(
        api.call("post", f"/v1/sessions/{mine.pk}/shares", json_body={"up_to_event_id": elsewhere}),
        404,
        "not_found",
    )
    assert_error(api.call("post", f"/v1/sessions/{mine.pk}/shares", json_body={"everything": 1}), 400)
    other_key = Api(key=make_tenant_key().key)
    link = _share(api, mine)
    assert_error(other_key.call("delete", f"/v1/shares/{link['id']}"), 404, "not_found")
    assert not ShareLink.objects.filter(revoked_at__isnull=False).exists()


def _flag(enabled: bool, tenant: Any) -> None:
    from somaagent.flags import services as flag_services

    flag_set(name="share_links", enabled=enabled, tenant=tenant)
    flag_services._cache.snapshot = None  # as if this process's refresh period had passed


@pytest.mark.django_db(transaction=True)
def test_staff_can_turn_sharing_off_for_a_tenant(api: Api, me: Any) -> None:
    session = _chat(me.tenant)
    link = _share(api, session)
    _flag(False, me.tenant)
    try:
        assert _open(link["url"]).status_code == 404
        assert_error(api.call("post", f"/v1/sessions/{session.pk}/shares", json_body={}), 403, "forbidden")
    finally:
        _flag(True, me.tenant)
    assert _open(link["url"]).status_code == 200


def test_staff_see_and_revoke_links_in_admin(api: Api, me: Any) -> None:
    from tests.somaagent.conftest import new_tenant, new_user

    session = _chat(me.tenant)
    link = _share(api, session)
    row = ShareLink.objects.get(pk=link["id"])
    staff = Client()
    staff.force_login(new_user("staff-" + new_tenant().name, is_staff=True, is_superuser=True))
    listing = staff.get(f"/admin/conversations/sharelink/?tenant__id__exact={me.tenant.pk}")
    assert listing.status_code == 200 and [r.pk for r in listing.context["cl"].result_list] == [row.pk]
    assert row.token not in listing.content.decode()  # the link itself is the secret
    assert row.token not in staff.get(f"/admin/conversations/sharelink/{row.pk}/change/").content.decode()
    assert "Share links" in staff.get("/admin/").content.decode()
    done = staff.post(
        "/admin/conversations/sharelink/",
        {"action": "revoke", "_selected_action": [str(row.pk)]},
        follow=True,
    )
    assert "Revoked 1 link(s)." in done.content.decode()
    assert _open(link["url"]).status_code == 404
    plain_staff = Client()
    plain_staff.force_login(new_user("plain-" + new_tenant().name, is_staff=True))
    assert plain_staff.get("/admin/conversations/sharelink/").status_code == 403
