"""Search in the web chat (issue 18), in headless Chromium: a result jumps to the message it found
in its chat, loading older pages and showing the branch the message is on."""

from __future__ import annotations

import random
import string
from typing import Any

import pytest
from django.db import transaction

from conversations.models import EventType, Session, SessionEvent
from conversations.services.events import attach_under, event_append
from somaagent.identity.principal import DEFAULT_TENANT_NAME
from somaagent.models import Tenant
from tests.live import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _turn(session: Session, question: str, answer: str, under: SessionEvent | None = None) -> SessionEvent:
    with transaction.atomic():
        extra: dict[str, Any] = {"attach": attach_under(under.event_id)} if under is not None else {}
        user = event_append(
            session_id=session.pk, type=EventType.USER_MESSAGE, data={"message": question}, **extra
        )
        event_append(
            session_id=session.pk,
            type=EventType.ASSISTANT_STARTED,
            data={"model": "m", "reply_to": str(user.event_id), "restart": False},
        )
        return event_append(
            session_id=session.pk,
            type=EventType.ASSISTANT_FINAL,
            data={"message": answer, "model": "m", "reply_to": str(user.event_id)},
        )


def _word() -> str:
    return "".join(random.choices(string.ascii_lowercase, k=10))


def _found(page: Any) -> dict[str, Any]:
    """The marked message: its text and whether it is inside the chat's visible area."""
    return dict(
        page.evaluate(
            """() => {
                const found = document.querySelectorAll('article.msg.found');
                if (found.length !== 1) return {count: found.length};
                const r = found[0].getBoundingClientRect();
                const log = document.getElementById('log').getBoundingClientRect();
                return {count: 1, text: found[0].querySelector('.body').innerText,
                        visible: r.bottom > log.top && r.top < log.bottom};
            }"""
        )
    )


def _open_hit(page: Any, word: str) -> None:
    page.locator("#new-chat").click()
    page.locator("#search-input").fill(word)
    hit = page.locator("#search-results a.hit", has_text=word)
    hit.wait_for()
    hit.click()


def test_a_result_opens_its_chat_at_the_message_on_its_branch(
    chat_page: Any, live_system: Any, chat_user: Any
) -> None:
    page = chat_page
    early, late = _word(), _word()
    tenant, _ = Tenant.objects.get_or_create(name=DEFAULT_TENANT_NAME)
    session = Session.objects.create(tenant=tenant, title="A long talk", created_by=chat_user.user)
    answers = [
        _turn(
            session, f"question {k}" + {2: f" about {early}", 60: f" about {late}"}.get(k, ""), f"answer {k}"
        )
        for k in range(80)
    ]
    _turn(session, "a new direction", "new answer", under=answers[5])  # the active branch leaves q6..q79

    # A message on another branch than the active one, far up it: that branch is shown, at the message.
    _open_hit(page, late)
    wait_until(
        lambda: _found(page).get("visible"), timeout=30, interval=0.2, what="the message found, in view"
    )
    assert _found(page)["text"] == f"question 60 about {late}"
    assert page.url.endswith(
        f"/c/{session.pk}/#event-"
        + str(
            SessionEvent.objects.get(session=session, payload__message=f"question 60 about {late}").event_id
        )
    )
    assert page.locator("article.msg.assistant .body").last.inner_text() == "answer 79"

    # A message far up the active branch: older pages are loaded until it is there.
    _open_hit(page, early)
    wait_until(
        lambda: _found(page).get("visible"), timeout=30, interval=0.2, what="the message found, in view"
    )
    assert _found(page)["text"] == f"question 2 about {early}"
    assert page.locator("article.msg.assistant .body").last.inner_text() == "new answer"

    # Many results come a page at a time.
    page.locator("#search-input").fill("question")
    hits = page.locator("#search-results a.hit")
    wait_until(lambda: hits.count() == 20, timeout=15, what="the first page of results")
    page.get_by_role("button", name="More results").click()
    wait_until(lambda: hits.count() == 40, timeout=15, what="the second page of results")
    assert len(set(hits.evaluate_all("els => els.map(e => e.href)"))) == 40

    # The link holds the message: opened anew (another tab, a reload), it goes there again.
    page.reload()
    wait_until(
        lambda: _found(page).get("visible"), timeout=30, interval=0.2, what="the message after a reload"
    )
    assert _found(page)["text"] == f"question 2 about {early}"
