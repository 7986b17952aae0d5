"""The web chat end to end in headless Chromium against real web, worker, beat and a stub model."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import transaction

from conversations.models import Attachment, EventType, Session, SessionEvent, Turn
from conversations.services.events import event_append
from somaagent.identity.principal import DEFAULT_TENANT_NAME
from somaagent.models import Tenant
from tests.live import wait_until
from tests.webchat.conftest import ARTIFACTS
from tests.webchat.netcut import CuttableRelay

pytestmark = [pytest.mark.browser, pytest.mark.integration]

REPLY = "article.msg.assistant"


def tokens(n: int) -> str:
    return " ".join(f"t{i}" for i in range(n))


def send(page: Any, text: str) -> None:
    box = page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")


def reply_state(page: Any) -> tuple[str | None, str]:
    """(data-state, visible text) of the last reply, read in one go."""
    return page.evaluate(
        """() => {
            const all = document.querySelectorAll('article.msg.assistant');
            const last = all[all.length - 1];
            if (!last) return [null, ''];
            return [last.dataset.state, last.querySelector('.body').innerText];
        }"""
    )


def wait_reply(page: Any, state: str, timeout: float = 60) -> str:
    page.locator(f"{REPLY}[data-state={state}]").last.wait_for(timeout=timeout * 1000)
    return reply_state(page)[1]


def wait_partial(page: Any, min_tokens: int) -> str:
    def partial() -> str | None:
        state, text = reply_state(page)
        if state == "streaming" and len(text.split()) >= min_tokens:
            return text
        assert state not in ("done", "error", "cancelled"), f"reply ended too early: {state} {text!r}"
        return None

    return wait_until(partial, timeout=60, interval=0.05, what="a partial reply")


def session_of(page: Any) -> str:
    wait_until(lambda: "/c/" in page.url, timeout=30, what="the chat's URL")
    return page.url.split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def test_send_see_it_stream_with_the_model_name_and_keyboard_newlines(chat_page, live_system):
    page = chat_page
    box = page.get_by_label("Message", exact=True)
    box.fill("first line")
    box.press("Shift+Enter")
    box.type("second line [[tokens=60]] [[delay=0.05]]")
    box.press("Enter")
    assert box.input_value() == ""
    user = page.locator("article.msg.user").last
    user.wait_for()
    assert user.locator(".body").inner_text().startswith("first line\nsecond line")
    seen: list[int] = []
    while True:
        state, text = reply_state(page)
        if state == "streaming" and text and (not seen or len(text) != seen[-1]):
            seen.append(len(text))
        if state in ("done", "error", "cancelled"):
            break
        time.sleep(0.03)
    assert state == "done", text
    assert len(seen) >= 3 and seen == sorted(seen), f"did not see the reply grow: {seen}"
    assert text == tokens(60)
    assert page.locator(f"{REPLY} .model").last.inner_text() == "stub-model"
    assert page.locator("#stop").is_hidden()
    sid = session_of(page)
    assert page.locator(f'.session[data-session-id="{sid}"]').is_visible()
    assert box.evaluate("el => el === document.activeElement")


def test_markdown_reply_renders_and_a_screenshot_is_kept(chat_page, live_system):
    page = chat_page
    send(
        page,
        "Here is **bold**, `code` and a [link](https://example.com).\n\n"
        "- one\n- two\n\n```python\nprint('hi')\n```",
    )
    wait_reply(page, "done")
    reply = page.locator(REPLY).last
    assert reply.locator("strong").inner_text() == "bold"
    assert reply.locator("ul > li").count() == 2
    assert reply.locator("pre code.language-python").inner_text() == "print('hi')"
    link = reply.locator("a[href='https://example.com']")
    assert link.get_attribute("rel") == "noopener noreferrer nofollow ugc"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-chat-finished-conversation.png"), full_page=True)
    assert (ARTIFACTS / "web-chat-finished-conversation.png").stat().st_size > 5000


def test_reload_mid_stream_shows_the_whole_reply_exactly_once(chat_page, live_system):
    page = chat_page
    send(page, "long answer please [[tokens=90]] [[delay=0.05]]")
    before = wait_partial(page, 8)
    page.reload()
    resumed = wait_partial(page, len(before.split()))
    assert resumed.startswith(before), "the reply so far was not restored in full"
    text = wait_reply(page, "done")
    assert text == tokens(90)
    assert page.locator(REPLY).count() == 1 and page.locator("article.msg.user").count() == 1


def test_network_loss_mid_stream_resumes_without_gap_or_duplicate(chat_page, live_system):
    page = chat_page
    relay = CuttableRelay(live_system.port)
    try:
        page.goto(f"{relay.url}/")  # the login cookie is per host, so it holds on the relay's port too
        sockets: list[Any] = []
        page.on("websocket", lambda ws: sockets.append(ws))
        send(page, "[[tokens=90]] [[delay=0.05]]")
        before = wait_partial(page, 5)
        relay.cut()
        socket_down = "() => !window.somaChat.state.stream.isOpen()"
        wait_until(lambda: page.evaluate(socket_down), timeout=30, what="the socket to drop")
        page.locator("#status", has_text="Reconnecting").wait_for()
        page.wait_for_timeout(2000)  # the reply goes on while the network is away
        relay.restore()
        text = wait_reply(page, "done")
        assert text == tokens(90) and text.startswith(before)
        assert len(sockets) >= 2, "the page never reconnected"
        assert page.locator(REPLY).count() == 1 and page.locator("article.msg.user").count() == 1
    finally:
        relay.close()


def test_the_offline_banner_clears_when_the_network_comes_back(chat_page, live_system):
    """Issue 18: after a 4 s drop the reply completed but "Offline — the reply keeps going…"
    stayed. The socket had outlived the drop (Chromium's offline mode, like a short Wi-Fi
    loss, leaves open WebSockets alone), so no reconnect came to clear the banner."""
    page = chat_page
    send(page, "[[tokens=120]] [[delay=0.05]]")
    wait_partial(page, 5)
    page.context.set_offline(True)
    page.locator("#status", has_text="Offline").wait_for()
    page.wait_for_timeout(1500)
    page.context.set_offline(False)
    assert wait_reply(page, "done") == tokens(120)
    wait_until(lambda: page.locator("#status").inner_text() == "", timeout=10, what="the banner to clear")


def test_thumbs_on_a_finished_reply_store_feedback_and_take_it_back(chat_page, live_system):
    from conversations.models import Feedback

    page = chat_page
    send(page, "[[reply=Paris is the capital.]]")
    wait_reply(page, "done")
    down = page.locator(f"{REPLY} .feedback button[data-rating=down]")
    down.click()
    wait_until(lambda: down.get_attribute("aria-pressed") == "true", timeout=10, what="the thumb to show")
    sid = session_of(page)
    wait_until(
        lambda: Feedback.objects.filter(session_id=sid, rating="down").exists(), timeout=10, what="feedback"
    )
    page.locator(f"{REPLY} .feedback button[data-rating=up]").click()
    wait_until(
        lambda: list(Feedback.objects.filter(session_id=sid).values_list("rating", flat=True)) == ["up"],
        timeout=10,
        what="the rating to change",
    )
    page.reload()  # the thumbs show what was given before
    up = page.locator(f"{REPLY} .feedback button[data-rating=up]")
    wait_until(
        lambda: up.get_attribute("aria-pressed") == "true", timeout=10, what="the thumb after a reload"
    )
    up.click()  # the same thumb again: taken back
    wait_until(lambda: not Feedback.objects.filter(session_id=sid).exists(), timeout=10, what="withdrawal")

    # The header's Export gives the chat as Markdown, with the page's own login.
    href = page.locator("#export").get_attribute("href")
    assert href == f"/v1/sessions/{sid}/export?format=markdown"
    exported = page.request.get(f"{live_system.url}{href}")
    assert exported.ok and "Paris is the capital." in exported.text()


def test_share_a_chat_and_open_the_link_without_logging_in(chat_page, live_system, browser):
    page = chat_page
    send(page, "[[reply=Lisbon has **trams**.]]")
    wait_reply(page, "done")
    page.locator("#share").click()
    status = page.locator("#status", has_text="Read-only link")
    status.wait_for()
    url = status.inner_text().rsplit(" ", 1)[-1]
    assert "/s/" in url
    stranger = browser.new_context()  # no login cookie
    try:
        shared = stranger.new_page()
        shared.goto(url)
        assert "Lisbon has trams." in shared.locator("#messages").inner_text()
        assert shared.locator("#messages strong").all_inner_texts() == ["trams"]  # the reply's Markdown
        assert shared.locator("#composer-input").count() == 0
    finally:
        stranger.close()


def test_search_your_chats_and_open_one_from_a_result(chat_page, live_system):
    page = chat_page
    send(page, "Tell me about narwhals [[reply=Narwhals have a long tusk.]]")
    wait_reply(page, "done")
    sid = session_of(page)
    page.locator("#new-chat").click()
    page.locator("#search-input").fill("narwhal tusk")
    hit = page.locator("#search-results a.hit").first
    hit.wait_for()
    marks = {m.lower() for m in hit.locator("mark").all_inner_texts()}
    assert marks == {"narwhals", "tusk"}  # the matches are marked, as text
    hit.click()
    wait_until(lambda: session_of(page) == sid, timeout=10, what="the chat to open")
    page.locator(REPLY, has_text="Narwhals have a long tusk.").wait_for()


def test_stop_cancels_the_reply(chat_page, live_system):
    page = chat_page
    send(page, "[[tokens=400]] [[delay=0.05]]")
    wait_partial(page, 5)
    page.get_by_role("button", name="Stop").click()
    text = wait_reply(page, "cancelled")
    assert page.locator(REPLY).last.locator(".state").inner_text() == "Stopped."
    assert tokens(400).startswith(text) and 0 < len(text.split()) < 400
    sid = session_of(page)
    turn = Turn.objects.get(session_id=sid)
    assert turn.status == Turn.Status.CANCELLED
    assert page.locator("#stop").is_hidden()


def test_model_error_shows_a_message_and_retry_sends_again(chat_page, live_system):
    page = chat_page
    send(page, "fail please [[status=400]]")
    wait_reply(page, "error")
    error = page.locator(f"{REPLY} .error").last
    assert "The reply failed" in error.inner_text()
    error.get_by_role("button", name="Retry").click()
    wait_until(lambda: page.locator("article.msg.user").count() == 2, timeout=30, what="the retried message")
    wait_until(lambda: page.locator(f"{REPLY}[data-state=error]").count() == 2, timeout=60, what="2nd reply")
    sid = session_of(page)
    messages = SessionEvent.objects.filter(session_id=sid, type=EventType.USER_MESSAGE)
    assert [e.payload["message"] for e in messages] == ["fail please [[status=400]]"] * 2


def test_upload_a_file_and_send_it(chat_page, live_system, tmp_path):
    page = chat_page
    good = tmp_path / "notes.txt"
    good.write_text("some notes")
    bad = tmp_path / "photo.png"
    bad.write_text("not a png at all")
    page.set_input_files("#file-input", [str(good), str(bad)])
    page.locator("#attachments .chip[data-state=ready]").wait_for()
    page.locator("#attachments .chip[data-state=quarantined]").wait_for()
    send(page, "please read the file [[tokens=3]]")
    wait_reply(page, "done")
    user = page.locator("article.msg.user").last
    link = user.locator(".chips a")
    assert link.count() == 1 and link.inner_text() == "notes.txt"
    assert page.locator("#attachments .chip").count() == 0
    sid = session_of(page)
    event = SessionEvent.objects.get(session_id=sid, type=EventType.USER_MESSAGE)
    [sent] = event.payload["attachments"]
    assert sent["filename"] == "notes.txt"
    stored = Attachment.objects.get(pk=sent["id"])
    assert str(stored.session_id) == sid and bytes(stored.content) == b"some notes"
    downloaded = page.request.get(f"{live_system.url}{link.get_attribute('href')}")
    assert downloaded.status == 200 and downloaded.body() == b"some notes"


def test_hostile_markdown_in_a_reply_is_inert(chat_page, live_system):
    page = chat_page
    page.evaluate("window.__pwned = 0")
    send(
        page,
        "<script>window.__pwned=1</script> <img src=x onerror=window.__pwned=2> "
        "[click](javascript:window.__pwned=3) <a href=javascript:window.__pwned=4>a</a> "
        '<iframe srcdoc="<script>parent.__pwned=5</script>"></iframe> ![i](javascript:x)',
    )
    wait_reply(page, "done")
    page.wait_for_timeout(300)
    found = page.evaluate(
        """() => {
            const root = document.getElementById('messages');
            const bad = [];
            root.querySelectorAll('*').forEach(el => {
                const banned = ['SCRIPT', 'IMG', 'IFRAME', 'OBJECT', 'EMBED', 'STYLE', 'SVG'];
                if (banned.includes(el.tagName)) bad.push(el.tagName);
                for (const a of el.attributes) {
                    if (a.name.startsWith('on')) bad.push(a.name);
                    if (a.name === 'href' && !/^(https?:|mailto:|\\/)/i.test(a.value)) bad.push(a.value);
                }
            });
            const reply = root.querySelector('article.msg.assistant .body');
            return {bad, pwned: window.__pwned, text: reply.innerText};
        }"""
    )
    assert found["bad"] == [] and found["pwned"] == 0
    assert "<script>window.__pwned=1</script>" in found["text"]


def _old_session(turns: int, owner: Any) -> Session:
    tenant, _ = Tenant.objects.get_or_create(name=DEFAULT_TENANT_NAME)
    session = Session.objects.create(tenant=tenant, title="A long talk", created_by=owner)
    for k in range(turns):
        with transaction.atomic():
            user = event_append(
                session_id=session.pk, type=EventType.USER_MESSAGE, data={"message": f"question {k}"}
            )
            event_append(
                session_id=session.pk,
                type=EventType.ASSISTANT_STARTED,
                data={"model": "m", "reply_to": str(user.event_id), "restart": False},
            )
            event_append(
                session_id=session.pk,
                type=EventType.ASSISTANT_FINAL,
                data={"message": f"answer {k}", "model": "m"},
            )
    return session


def test_long_history_loads_older_turns_on_demand_then_rename_and_delete(chat_page, live_system, chat_user):
    page = chat_page
    session = _old_session(40, owner=chat_user.user)
    page.goto(f"{live_system.url}/c/{session.pk}/")
    page.get_by_text("answer 39", exact=True).wait_for()
    assert page.locator(REPLY).count() < 40
    assert page.get_by_role("button", name="Load earlier messages").is_visible()
    # Scrolling to the top loads the next older page (and so does the button); repeat until the start.
    load_more = """() => {
        const button = document.getElementById('load-older');
        if (!button.hidden) button.click();
        document.getElementById('log').scrollTop = 0;
        return button.hidden;
    }"""
    wait_until(
        lambda: page.evaluate(load_more) and page.locator(REPLY).count() == 40,
        timeout=60,
        interval=0.3,
        what="the whole history",
    )
    answers = page.locator(f"{REPLY} .body").all_inner_texts()
    assert answers == [f"answer {k}" for k in range(40)]
    assert page.locator("article.msg.user").count() == 40

    page.get_by_role("button", name="Rename").click()
    title = page.get_by_label("Chat title")
    title.fill("Renamed talk")
    title.press("Enter")
    page.get_by_role("heading", name="Renamed talk").wait_for()
    wait_until(lambda: Session.objects.get(pk=session.pk).title == "Renamed talk", timeout=10, what="rename")
    page.locator(f'.session[data-session-id="{session.pk}"]', has_text="Renamed talk").wait_for()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    page.locator(f'.session[data-session-id="{session.pk}"]').wait_for(state="detached")
    assert not Session.objects.filter(pk=session.pk).exists()
    assert page.url.rstrip("/") == live_system.url


def test_narrow_screen_keeps_the_chat_usable(browser, live_system, chat_user):
    from tests.webchat.conftest import log_in

    context = browser.new_context(viewport={"width": 375, "height": 700})
    page = context.new_page()
    try:
        log_in(page, live_system.url, chat_user)
        assert page.locator("#sidebar").is_hidden()
        send(page, "small screen [[tokens=5]]")
        assert wait_reply(page, "done") == tokens(5)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"the page scrolls sideways ({width}px)"
        page.get_by_role("button", name="Chats").click()
        page.get_by_role("button", name="New chat").wait_for()
        assert page.locator("#sidebar").is_visible()
        page.keyboard.press("Escape")
        page.locator("#sidebar").wait_for(state="hidden")
    finally:
        context.close()


def test_unauthenticated_visitors_get_the_login_page(browser, live_system):
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{live_system.url}/")
        assert "/login/" in page.url
        page.get_by_label("User name").fill("nobody")
        page.get_by_label("Password").fill("wrong")
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("alert").wait_for()
        assert "Please enter a correct" in page.get_by_role("alert").inner_text()
        assert "/login/" in page.url
    finally:
        context.close()


@pytest.mark.slow
def test_reply_taken_over_after_a_worker_crash_replaces_the_partial_text(chat_page, live_system):
    page = chat_page
    send(page, "[[tokens=120]] [[delay=0.05]]")
    wait_partial(page, 10)
    live_system.kill_workers()
    live_system.ensure_worker()
    text = wait_reply(page, "done", timeout=120)
    assert text == tokens(120)
    assert page.locator(REPLY).count() == 1
    sid = session_of(page)
    started = SessionEvent.objects.filter(session_id=sid, type=EventType.ASSISTANT_STARTED).order_by("seq")
    assert [e.payload["restart"] for e in started][-1] is True
