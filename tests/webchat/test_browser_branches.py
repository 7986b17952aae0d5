"""Branches in the web chat (issue 18), in headless Chromium against the real system and stub model:
edit a message, regenerate a reply, switch between versions (``< n/m >``) in place."""

from __future__ import annotations

from typing import Any

import pytest

from tests.live import wait_until
from tests.webchat.test_browser import send, session_of, wait_reply

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def bodies(page: Any) -> list[str]:
    """The visible text of every message and reply, in order."""
    return list(page.eval_on_selector_all("article.msg .body", "els => els.map(e => e.innerText.trim())"))


def wait_bodies(page: Any, expected: list[str]) -> None:
    try:
        wait_until(lambda: bodies(page) == expected, timeout=30, interval=0.1, what="the chat's messages")
    except AssertionError:
        raise AssertionError(f"the chat shows {bodies(page)}, not {expected}") from None


def counter(article: Any) -> str:
    return str(article.locator(".branch .count").inner_text())


def test_edit_and_regenerate_make_versions_and_switch_in_place(chat_page: Any, live_system: Any) -> None:
    page = chat_page
    send(page, "[[reply=Noted: apples.]] I like apples")
    wait_reply(page, "done")
    session_of(page)
    send(page, "[[reply=Noted: bananas.]] And bananas")
    wait_bodies(
        page,
        [
            "[[reply=Noted: apples.]] I like apples",
            "Noted: apples.",
            "[[reply=Noted: bananas.]] And bananas",
            "Noted: bananas.",
        ],
    )

    # Edit the second message: a new version, shown in place of the old one.
    second = page.locator("article.msg.user").nth(1)
    second.get_by_role("button", name="Edit").click()
    box = second.get_by_label("Edit message")
    box.fill("[[reply=Noted: cherries.]] And cherries")
    second.get_by_role("button", name="Send").click()
    wait_bodies(
        page,
        [
            "[[reply=Noted: apples.]] I like apples",
            "Noted: apples.",
            "[[reply=Noted: cherries.]] And cherries",
            "Noted: cherries.",
        ],
    )
    edited = page.locator("article.msg.user").nth(1)
    wait_until(lambda: edited.locator(".branch .count").count() == 1, timeout=15, what="the edit's ‹ n/m ›")
    assert counter(edited) == "2/2"

    # Previous goes back to the first version, in place, with its own reply.
    edited.get_by_role("button", name="Previous version").click()
    wait_bodies(
        page,
        [
            "[[reply=Noted: apples.]] I like apples",
            "Noted: apples.",
            "[[reply=Noted: bananas.]] And bananas",
            "Noted: bananas.",
        ],
    )
    assert counter(page.locator("article.msg.user").nth(1)) == "1/2"
    page.locator("article.msg.user").nth(1).get_by_role("button", name="Next version").click()
    wait_bodies(
        page,
        [
            "[[reply=Noted: apples.]] I like apples",
            "Noted: apples.",
            "[[reply=Noted: cherries.]] And cherries",
            "Noted: cherries.",
        ],
    )

    # Regenerate the last reply: a second version of it, shown; the first stays one click away.
    last = page.locator("article.msg.assistant").last
    last.get_by_role("button", name="Regenerate").click()
    wait_until(
        lambda: (
            page.locator("article.msg.assistant .branch .count").count() == 1
            and page.locator("article.msg.assistant[data-state=done]").count() == 2
        ),
        timeout=30,
        what="the regenerated reply with its ‹ n/m ›",
    )
    reply = page.locator("article.msg.assistant").last
    assert counter(reply) == "2/2" and bodies(page)[-1] == "Noted: cherries."
    reply.get_by_role("button", name="Previous version").click()
    wait_until(
        lambda: counter(page.locator("article.msg.assistant").last) == "1/2", timeout=15, what="version 1/2"
    )
    assert bodies(page)[-1] == "Noted: cherries."

    # A message sent on the version shown goes on that branch.
    send(page, "[[reply=Noted: dates.]] And dates")
    wait_bodies(
        page,
        [
            "[[reply=Noted: apples.]] I like apples",
            "Noted: apples.",
            "[[reply=Noted: cherries.]] And cherries",
            "Noted: cherries.",
            "[[reply=Noted: dates.]] And dates",
            "Noted: dates.",
        ],
    )
    assert counter(page.locator("article.msg.assistant").nth(1)) == "1/2"
