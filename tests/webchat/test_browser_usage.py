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


def test_the_usage_panel_shows_the_budget_left(chat_page: Any, live_system: Any) -> None:
    from somaagent.identity.principal import DEFAULT_TENANT_NAME
    from somaagent.models import Budget, Tenant

    tenant, _ = Tenant.objects.get_or_create(name=DEFAULT_TENANT_NAME)
    budget = Budget.objects.create(tenant=tenant, daily_tokens=9_000_000, monthly_tokens=None)
    try:
        page = chat_page
        page.get_by_role("button", name="Usage").click()
        dialog = page.locator("dialog#usage")
        dialog.locator("table.usage-table").wait_for()
        day = dialog.get_by_role("row", name="Budget today").inner_text()
        assert day.endswith("of 9,000,000 tokens left"), day
        assert dialog.get_by_role("row", name="Budget this month").inner_text().endswith("no limit")
    finally:
        budget.delete()
