"""The web chat's Schedules panel in headless Chromium (issue 19): add, see, turn off, run now,
delete, and a paused schedule that says why."""

from __future__ import annotations

import re
from typing import Any

import pytest

from conversations.schedules.models import Schedule, ScheduleRun
from tests.live import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _open(page: Any) -> Any:
    page.get_by_role("button", name="Schedules", exact=True).click()
    dialog = page.locator("dialog#schedules")
    dialog.wait_for()
    return dialog


def test_add_see_turn_off_run_and_delete_a_schedule(chat_page: Any, chat_user: Any) -> None:
    page = chat_page
    dialog = _open(page)
    dialog.get_by_text("No schedules yet.").wait_for()  # once the list has loaded
    dialog.get_by_label("Name").fill("Morning digest")
    dialog.get_by_label("Message ({date} and {time} become the run's)").fill("News for {date} [[reply=ok]]")
    dialog.get_by_label("When").select_option("cron")
    dialog.get_by_label("Cron (minute hour day month weekday)").fill("0 8 * * mon-fri")
    dialog.get_by_label("Time zone").fill("Europe/Paris")
    dialog.get_by_role("button", name="Add schedule").click()
    item = dialog.locator("li.schedule", has_text="Morning digest")
    item.wait_for()
    assert "cron 0 8 * * mon-fri (Europe/Paris)" in item.inner_text()
    assert "Next run:" in item.inner_text()
    schedule = Schedule.objects.get(owner_user=chat_user.user, name="Morning digest")
    assert schedule.cron == "0 8 * * mon-fri" and schedule.timezone == "Europe/Paris"

    item.get_by_role("button", name="Turn off").click()
    item.get_by_role("button", name="Turn on").wait_for()
    assert "Off" in item.inner_text()
    assert Schedule.objects.get(pk=schedule.pk).enabled is False

    item.get_by_role("button", name="Run now").click()
    dialog.get_by_text("will run in a few seconds").wait_for()
    wait_until(
        lambda: ScheduleRun.objects.filter(schedule=schedule, manual=True, status="completed").exists(),
        timeout=30,
        what="the manual run answered",
    )

    page.once("dialog", lambda d: d.accept())  # the browser's "Delete …?" confirmation
    item.get_by_role("button", name="Delete").click()
    dialog.get_by_text("No schedules yet.").wait_for()
    assert not Schedule.objects.filter(pk=schedule.pk).exists()


def _paused_schedule(chat_user: Any, name: str) -> Schedule:
    """One of the chat user's schedules, paused by the runs' failures."""
    from somaagent.identity.principal import DEFAULT_TENANT_NAME
    from somaagent.models import Tenant

    return Schedule.objects.create(
        tenant=Tenant.objects.get(name=DEFAULT_TENANT_NAME),
        name=name,
        message="x",
        kind=Schedule.Kind.INTERVAL,
        interval_seconds=3600,
        enabled=False,
        paused_reason="Paused after 3 failed runs in a row; the last: the model refused",
        owner_user=chat_user.user,
    )


def test_a_paused_schedule_says_why(chat_page: Any, chat_user: Any) -> None:
    _paused_schedule(chat_user, "Broken")
    dialog = _open(chat_page)
    note = dialog.locator("li.schedule", has_text="Broken").get_by_role("note")
    note.wait_for()
    assert "Paused after 3 failed runs" in note.inner_text()


def test_the_owner_is_told_of_a_paused_schedule_without_opening_the_panel(
    chat_page: Any, chat_user: Any
) -> None:
    schedule = _paused_schedule(chat_user, "Nightly report")
    page = chat_page
    page.reload()  # the chat as the owner opens it after the pause
    notice = page.locator("#schedule-notice")
    notice.wait_for()
    assert "Nightly report" in notice.inner_text() and "Paused after 3 failed runs" in notice.inner_text()
    assert not page.locator("dialog#schedules").is_visible()
    notice.get_by_role("button", name="Open schedules").click()
    item = page.locator("dialog#schedules li.schedule", has_text="Nightly report")
    item.get_by_role("button", name="Turn on").click()  # turned on again: the notice goes
    wait_until(lambda: Schedule.objects.get(pk=schedule.pk).enabled, timeout=10, what="the schedule on")
    notice.wait_for(state="hidden")


def test_a_schedule_into_this_chat_with_an_end_and_its_run_history(chat_page: Any, chat_user: Any) -> None:
    """The panel makes what the API can: runs appended to the open chat, an end, what a missed
    run does; and shows each run's history (outcome, tokens, when it started and ended)."""
    page = chat_page
    box = page.get_by_label("Message", exact=True)
    box.fill("hello [[reply=hi there]]")
    box.press("Enter")
    page.locator("article.msg.assistant").last.get_by_text("hi there").wait_for()
    page.wait_for_url(re.compile(r"/c/[0-9a-f-]{36}/$"))
    session_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    dialog = _open(page)
    dialog.get_by_text("No schedules yet.").wait_for()
    dialog.get_by_label("Name").fill("Into this chat")
    dialog.get_by_label("Message ({date} and {time} become the run's)").fill("Digest {date} [[reply=digest]]")
    dialog.get_by_label("Runs go to").select_option("this")
    dialog.get_by_label("Ends (optional)").fill("2031-01-02T09:30")
    dialog.get_by_label("A run missed while the system was down").select_option("skip")
    dialog.get_by_role("button", name="Add schedule").click()
    item = dialog.locator("li.schedule", has_text="Into this chat")
    item.wait_for()
    assert "into this chat" in item.inner_text() and "ends" in item.inner_text()
    schedule = Schedule.objects.get(owner_user=chat_user.user, name="Into this chat")
    assert str(schedule.session_id) == session_id and schedule.missed == "skip"
    assert schedule.ends_at is not None and schedule.ends_at.year == 2031

    item.get_by_role("button", name="Run now").click()
    wait_until(
        lambda: ScheduleRun.objects.filter(schedule=schedule, status="completed").exists(),
        timeout=60,
        what="the run answered",
    )
    run = ScheduleRun.objects.get(schedule=schedule)
    assert str(run.session_id) == session_id, "appended to the chosen chat"
    item.get_by_role("button", name="History").click()
    entry = item.locator("ol.schedule-runs li").first
    entry.wait_for()
    text = entry.inner_text()
    assert "completed" in text and f"{run.tokens} tokens" in text and "started" in text and "ended" in text
    assert entry.get_by_role("link", name="Open the chat").get_attribute("href") == f"/c/{session_id}/"
