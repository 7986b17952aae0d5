"""The web chat's Usage panel in headless Chromium (issue 18): after a reply, your tokens today."""

from __future__ import annotations

from typing import Any

import pytest

from somaagent.models import TokenUsage
from tests.live import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_the_usage_panel_shows_your_tokens_today(chat_page: Any, live_system: Any) -> None:
    page = chat_page
    box = page.get_by_label("Message", exact=True)
    box.fill("count my tokens [[reply=Counted]]")
    box.press("Enter")
    page.locator("article.msg.assistant[data-state=done]").last.wait_for(timeout=60_000)
    wait_until(lambda: TokenUsage.objects.exists(), timeout=20, what="the reply's usage stored")

    page.get_by_role("button", name="Usage").click()
    dialog = page.locator("dialog#usage")
    dialog.locator("table.usage-table").wait_for()
    today = dialog.get_by_role("row", name="Today", exact=False).first.inner_text()
    tokens = int(today.split()[1].replace(",", ""))
    assert tokens > 0
    assert "Your chats." in dialog.inner_text()
    assert "stub-model" in dialog.get_by_role("list", name="By model").inner_text()
