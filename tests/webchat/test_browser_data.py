"""The web chat's "Your data" panel (issue 18), in headless Chromium: list and revoke your share
links, export all your chats, import a ChatGPT export as a new chat, a bad file refused whole."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conversations.models import Session, ShareLink
from tests.live import wait_until
from tests.webchat.test_browser import send, session_of, wait_reply

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHATGPT = Path(__file__).parent.parent / "conversations" / "data" / "chatgpt_conversations.json"


def _open_panel(page: Any) -> Any:
    page.get_by_role("button", name="Your data").click()
    dialog = page.locator("dialog#data")
    dialog.wait_for()
    return dialog


def test_list_and_revoke_links_export_all_and_import(
    chat_page: Any, live_system: Any, browser: Any, chat_user: Any, tmp_path: Path
) -> None:
    page = chat_page
    send(page, "[[reply=Shared words.]] Something to share")
    wait_reply(page, "done")
    sid = session_of(page)
    page.locator("#share").click()
    page.locator("#status", has_text="Read-only link").wait_for()
    link = ShareLink.objects.get(session_id=sid)
    url = f"{live_system.url}/s/{link.token}/"
    assert page.request.get(url).status == 200

    dialog = _open_panel(page)
    item = dialog.locator(f'li.share-link[data-share-id="{link.pk}"]')
    item.wait_for()
    assert url in item.inner_text()
    item.get_by_role("button", name="Revoke").click()
    item.wait_for(state="detached")
    assert dialog.locator("#shares-empty").is_visible()
    stranger = browser.new_context()  # the link, opened logged out, is gone
    try:
        assert stranger.request.get(url).status == 404
    finally:
        stranger.close()

    one = page.request.get(live_system.url + str(dialog.locator("#export-chat-json").get_attribute("href")))
    assert one.ok and one.json()["session"]["id"] == sid and one.json()["format"] == "somaagent.chat.v1"
    one_md = dialog.locator("#export-chat-markdown").get_attribute("href")
    assert "Shared words." in page.request.get(live_system.url + str(one_md)).text()
    exported = page.request.get(
        live_system.url + str(dialog.locator("#export-all-json").get_attribute("href"))
    )
    assert exported.ok and any(c["session"]["id"] == sid for c in exported.json()["chats"])
    markdown = page.request.get(
        live_system.url + str(dialog.locator("#export-all-markdown").get_attribute("href"))
    )
    assert markdown.ok and "Shared words." in markdown.text()

    mine = Session.objects.filter(created_by=chat_user.user)
    before = mine.count()
    hostile = tmp_path / "hostile.json"
    hostile.write_text(json.dumps([{"title": "x", "mapping": {"a": {"parent": "a", "children": ["a"]}}}]))
    dialog.locator("#import-input").set_input_files(str(hostile))
    dialog.locator("#data-status", has_text="Nothing was imported").wait_for()
    assert mine.count() == before
    dialog.locator("#import-input").set_input_files(str(CHATGPT))
    dialog.locator("#data-status", has_text="Imported 1 chat").wait_for()
    assert mine.count() == before + 1
    page.get_by_role("button", name="Close").first.click()
    wait_until(
        lambda: page.locator(".session", has_text="Rail trip through Iberia").count() == 1,
        timeout=15,
        what="the imported chat in the list",
    )
    page.locator(".session", has_text="Rail trip through Iberia").click()  # it reads like any chat
    replies = page.locator("article.msg.assistant[data-state=done] .body")
    wait_until(lambda: replies.count() == 1, timeout=15, what="the imported reply")
    assert replies.first.inner_text() == "Take the train to Madrid, then the AVE to Barcelona."
    asked = ["Plan a rail trip from Lisbon to Barcelona.", "How long does it take?"]
    users = page.locator("article.msg.user .body")
    wait_until(lambda: users.all_inner_texts() == asked, timeout=15, what="both messages")  # the last streams
    states = page.eval_on_selector_all("article.msg.assistant", "els => els.map(e => e.dataset.state)")
    assert states == ["done"], states  # the last message has no reply, and none is awaited
