"""The web chat's approval card in headless Chromium: Approve, Deny, Always allow in this chat."""

from __future__ import annotations

import time
from typing import Any

import pytest

from conversations.models import ToolApproval
from somaagent.audit import Actor
from somaagent.identity.principal import DEFAULT_TENANT_NAME
from somaagent.models import PolicyData, Tenant
from somaagent.policy.data import policy_data_set
from tests.live import wait_until
from tests.webchat.test_browser import send, session_of

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PENDING = ".approval[data-state=pending]"


def replies_done(page: Any) -> int:
    return int(page.locator("article.msg.assistant[data-state=done]").count())


def wait_done(page: Any, count: int) -> str:
    wait_until(lambda: replies_done(page) >= count, timeout=60, what=f"{count} finished replies")
    return str(page.locator("article.msg.assistant").last.locator(".body").inner_text())


def test_the_approval_card_approves_denies_and_always_allows(chat_page, live_system):
    tenant = Tenant.objects.get(name=DEFAULT_TENANT_NAME)
    before = PolicyData.objects.filter(tenant=tenant).values_list("document", flat=True).first() or {}
    policy_data_set(tenant=tenant, document={"approval_tools": ["current_time"]}, actor=Actor.system("test"))
    time.sleep(1.5)  # every process reads the new policy version within about a second
    try:
        page = chat_page
        send(page, "what time is it? [[tool=current_time:{}]] [[echo_tools]]")
        card = page.locator(PENDING)
        card.wait_for()
        assert "current_time wants to run" in card.inner_text() and "{}" in card.inner_text()
        session_id = session_of(page)
        assert ToolApproval.objects.get(session_id=session_id).status == "pending"
        card.get_by_role("button", name="Approve", exact=True).click()
        assert '"iso"' in wait_done(page, 1)
        page.locator(".approval[data-state=approved]").wait_for()
        assert page.locator(PENDING).count() == 0

        send(page, "again [[tool=current_time:{}]] [[echo_tools]]")
        page.locator(PENDING).wait_for()
        page.locator(PENDING).get_by_role("button", name="Deny").click()
        assert "approval_denied" in wait_done(page, 2)
        page.locator(".approval[data-state=denied]").wait_for()

        send(page, "third [[tool=current_time:{}]]")
        page.locator(PENDING).wait_for()
        page.locator(PENDING).get_by_role("button", name="Always allow in this chat").click()
        wait_done(page, 3)
        send(page, "fourth [[tool=current_time:{}]]")
        wait_done(page, 4)
        assert page.locator(".approval").count() == 3  # the fourth call ran without asking
        statuses = sorted(ToolApproval.objects.filter(session_id=session_id).values_list("status", flat=True))
        assert statuses == ["approved", "approved", "denied"]

        # A reload shows the answered cards from the session's events, none of them pending.
        page.reload()
        wait_until(lambda: page.locator(".approval").count() == 3, timeout=30, what="the cards after reload")
        assert page.locator(PENDING).count() == 0
    finally:
        policy_data_set(tenant=tenant, document=before, actor=Actor.system("test"))
