"""The admin as SomaAgent's own: its name, models grouped by what staff do, and a dashboard."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from conversations.models import Session, SessionEvent, Turn
from somaagent.models import DeadLetter, OutboxMessage
from tests.somaagent.conftest import new_tenant, new_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(new_user("staff-" + new_tenant().name, is_staff=True, is_superuser=True))
    return client


def test_the_admin_is_named_for_somaagent_and_its_models_read_properly(staff: Client) -> None:
    page = staff.get("/admin/").content.decode()
    assert "SomaAgent administration" in page and "Django administration" not in page
    for wrong in ("summarys", "aliass", "Llm credentials", "Api keys"):
        assert wrong not in page
    for right in ("Session summaries", "LLM credentials", "API keys"):
        assert right in page


def test_the_index_groups_models_by_what_staff_do(staff: Client) -> None:
    response = staff.get("/admin/")
    sections = [app["name"] for app in response.context["app_list"]]
    assert sections == [
        "Conversations",
        "People & access",
        "Models",
        "Tools",
        "Memory",
        "Documents",
        "Operations",
    ]
    by_section = {
        app["name"]: [m["object_name"] for m in app["models"]] for app in response.context["app_list"]
    }
    assert "ApiKey" in by_section["People & access"] and "User" in by_section["People & access"]
    assert by_section["Conversations"][:3] == ["Session", "SessionEvent", "Turn"]
    assert "DeadLetter" in by_section["Operations"]
    # An app's own page still lists that app alone.
    assert staff.get("/admin/conversations/").status_code == 200


def test_the_dashboard_counts_the_turns_and_errors_of_today(staff: Client) -> None:
    from django.utils import timezone

    tenant = new_tenant()
    session = Session.objects.create(tenant=tenant)

    def ended(status: str, seq: int, when: Any) -> None:
        event = SessionEvent.objects.create(
            session=session, seq=seq, type="user.message", role="user", payload={}
        )
        Turn.objects.create(tenant=tenant, session=session, user_event=event, status=status, finished_at=when)

    def shown(status: str) -> int:
        page = staff.get("/admin/").content.decode()
        row = re.search(rf"Turns ended today \(UTC\) \({status}\)</a></th>\s*<td[^>]*>(\d+)<", page)
        assert row is not None, page[page.index('id="soma-dashboard"') :][:3000]
        return int(row.group(1))

    before = {s: shown(s) for s in ("completed", "failed")}
    now = timezone.now()
    ended("completed", 1, now)
    ended("failed", 2, now)
    ended("failed", 3, now)
    ended("failed", 4, now - timedelta(days=2))  # not today
    assert shown("completed") == before["completed"] + 1
    assert shown("failed") == before["failed"] + 2


def test_the_turns_and_errors_of_today_link_to_the_turns_of_today(staff: Client) -> None:
    """Each of today's figures opens the list of those turns, ended today, not of all time."""
    from django.utils import timezone

    tenant = new_tenant()
    session = Session.objects.create(tenant=tenant)
    now = timezone.now()
    ids = {}
    for seq, (name, when) in enumerate((("today", now), ("before", now - timedelta(days=2))), start=1):
        event = SessionEvent.objects.create(
            session=session, seq=seq, type="user.message", role="user", payload={}
        )
        ids[name] = Turn.objects.create(
            tenant=tenant, session=session, user_event=event, status="failed", finished_at=when
        ).pk
    page = staff.get("/admin/").content.decode()
    link = re.search(r'href="([^"]*)">Turns ended today \(UTC\) \(failed\)</a>', page)
    assert link is not None, page[page.index('id="soma-dashboard"') :][:3000]
    listed = staff.get(link.group(1).replace("&amp;", "&"))
    assert listed.status_code == 200
    shown = {turn.pk for turn in listed.context["cl"].result_list}
    assert ids["today"] in shown and ids["before"] not in shown
    assert all(turn.status == "failed" for turn in listed.context["cl"].result_list)


def test_the_dashboard_shows_the_operational_figures_with_links(staff: Client) -> None:
    tenant = new_tenant()
    session = Session.objects.create(tenant=tenant)
    event = SessionEvent.objects.create(session=session, seq=1, type="user.message", role="user", payload={})
    Turn.objects.create(tenant=tenant, session=session, user_event=event)
    OutboxMessage.objects.create(topic="conversation.turn", payload={}, dedupe_key="dash-1")
    DeadLetter.objects.create(topic="memory.write", event={}, error="x")

    page = staff.get("/admin/").content.decode()
    dashboard = page[page.index('id="soma-dashboard"') :]
    row = re.search(
        r'href="(/admin/conversations/turn/\?status=queued)">([^<]*)</a></th>\s*<td[^>]*>(\d+)<', dashboard
    )
    assert row is not None, dashboard[:2000]
    assert int(row.group(3)) >= 1
    assert staff.get(row.group(1).replace("&amp;", "&")).status_code == 200
    assert "/admin/somaagent/outboxmessage/?published_at__isnull=True" in dashboard
    assert "/admin/somaagent/deadletter/?replayed_at__isnull=True&amp;topic=memory.write" in dashboard


def test_staff_see_which_event_each_event_follows_on_its_branch(staff: Client) -> None:
    tenant = new_tenant()
    session = Session.objects.create(tenant=tenant)
    first = SessionEvent.objects.create(session=session, seq=1, type="user.message", role="user", payload={})
    SessionEvent.objects.create(
        session=session, seq=2, type="user.message", role="user", payload={}, parent_id=None
    )
    edited = SessionEvent.objects.create(
        session=session, seq=3, type="assistant.final", role="assistant", payload={}, parent_id=first.event_id
    )
    page = staff.get(f"/admin/conversations/session/{session.pk}/change/").content.decode()
    assert "Parent id" in page and str(first.event_id) in page
    listed = staff.get(f"/admin/conversations/sessionevent/?q={edited.event_id}").content.decode()
    assert str(first.event_id) in listed
