"""Feedback in the web chat (issue 18), in headless Chromium: a rating's comment and tags are given
and shown under the reply, after a reload too, and stored as the API and the admin read them."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.models import Feedback
from tests.live import wait_until
from tests.webchat.test_browser import REPLY, send, session_of, wait_reply

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_a_rating_takes_a_comment_and_tags_shown_under_the_reply(chat_page: Any, live_system: Any) -> None:
    page = chat_page
    send(page, "[[reply=The moon is made of cheese.]]")
    wait_reply(page, "done")
    sid = session_of(page)
    reply = page.locator(REPLY).last
    reply.locator(".feedback button[data-rating=down]").click()

    form = reply.get_by_role("form", name="Your feedback on this reply")
    form.get_by_role("button", name="Inaccurate").click()
    form.get_by_role("button", name="Too long").click()
    form.get_by_role("button", name="Too long").click()  # toggled off again
    form.get_by_label("Comment on this reply").fill("The moon is rock.")
    form.get_by_role("button", name="Save feedback").click()

    def stored() -> Any:
        row = Feedback.objects.filter(session_id=sid).first()
        return row if row is not None and row.comment else None

    row = wait_until(stored, timeout=10, what="the comment stored")
    assert (row.rating, row.comment, row.tags) == ("down", "The moon is rock.", ["Inaccurate"])
    note = reply.locator(".feedback-note")
    note.wait_for()
    assert "The moon is rock." in note.inner_text() and "Inaccurate" in note.inner_text()

    page.reload()  # shown again from what was stored
    note = page.locator(REPLY).last.locator(".feedback-note")
    wait_until(
        lambda: "The moon is rock." in note.inner_text(), timeout=15, what="the comment after a reload"
    )
    assert "Inaccurate" in note.inner_text()

    # Edit it: the form opens with what was given; a change of thumb keeps the comment.
    note.get_by_role("button", name="Edit comment").click()
    form = page.locator(REPLY).last.get_by_role("form", name="Your feedback on this reply")
    assert form.get_by_label("Comment on this reply").input_value() == "The moon is rock."
    assert form.get_by_role("button", name="Inaccurate").get_attribute("aria-pressed") == "true"
    form.get_by_role("button", name="Cancel").click()
    page.locator(REPLY).last.locator(".feedback button[data-rating=up]").click()
    wait_until(
        lambda: (
            list(Feedback.objects.filter(session_id=sid).values_list("rating", "comment", "tags"))
            == [("up", "The moon is rock.", [])]
        ),
        timeout=10,
        what="the rating changed, the comment kept",
    )
