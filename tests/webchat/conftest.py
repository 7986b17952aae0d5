"""Real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, against a live system."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _skip_reason() -> str | None:
    if not os.path.exists(CHROMIUM):
        return (
            f"BROWSER TESTS SKIPPED: {CHROMIUM} is missing. Install it with "
            "`apt-get install -y chromium chromium-driver` (.ci/run does this)."
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return (
            "BROWSER TESTS SKIPPED: the playwright package is missing (pip install -r requirements-dev.txt)."
        )
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module; Playwright never downloads a browser of its own."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop alive in this thread; the test's own
    # (synchronous) ORM calls are safe, so let Django allow them while it runs.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            yield instance
            instance.close()
            # ORM calls made while Playwright's loop ran got their own connections (Django keys
            # connections by async context); close them here, or the test database cannot be dropped.
            connections.close_all()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@dataclass
class ChatUser:
    username: str
    password: str
    user: Any


@pytest.fixture
def chat_user(live_db: None) -> ChatUser:
    """A user without a tenant membership: the chat puts them in the default tenant."""
    from django.contrib.auth import get_user_model

    username = f"user-{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    user = get_user_model().objects.create_user(username=username, password=password)
    return ChatUser(username=username, password=password, user=user)


def log_in(page: Any, base_url: str, who: ChatUser) -> None:
    page.goto(f"{base_url}/")
    assert "/login/" in page.url, page.url
    page.get_by_label("User name").fill(who.username)
    page.get_by_label("Password").fill(who.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base_url}/")
    page.get_by_label("Message", exact=True).wait_for()


@pytest.fixture
def chat_page(browser: Any, live_system: Any, chat_user: ChatUser) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, live_system.url, chat_user)
    page.soma_errors = errors
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
