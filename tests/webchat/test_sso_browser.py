"""Single sign-on in headless Chromium against a real web server and worker (issue 21): the system
boots and serves its login page while the provider is down, then the button leads to the chat."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from somaagent.models import AuditLog, Membership, OidcIdentity
from tests.live import LiveSystem, StubServer, free_port
from tests.somaagent.oidc.flow import CLIENT_ID, CLIENT_SECRET, GROUP_MAP
from tests.webchat.conftest import ARTIFACTS
from tests.webchat.test_browser import send, wait_reply

pytestmark = [pytest.mark.browser, pytest.mark.integration]


class SsoSystem:
    """A live system whose provider is not there at first (``start_provider`` brings it up)."""

    def __init__(self, llm_stub: StubServer) -> None:
        self.provider_port = free_port()
        self.provider: StubServer | None = None
        self.system = LiveSystem(
            env={
                "SOMA_LLM_BASE_URL": f"{llm_stub.url}/v1",
                "SOMA_LLM_MODEL": "stub-model",
                "SOMA_OIDC_ISSUER": f"http://127.0.0.1:{self.provider_port}",
                "SOMA_OIDC_CLIENT_ID": CLIENT_ID,
                "SOMA_OIDC_CLIENT_SECRET": CLIENT_SECRET,
                "SOMA_OIDC_PROVIDER_NAME": "Stub IdP",
                "SOMA_OIDC_GROUP_MAP": GROUP_MAP,
                "SOMA_SSE_HEARTBEAT_SECONDS": "1",  # open streams re-check access every second
                # Discovery is not kept, so that the provider can be down in any test of the module.
                "SOMA_OIDC_DISCOVERY_CACHE_SECONDS": "0",
            },
            worker_queues=("conversation,memory,default",),
        )

    def start_provider(self) -> str:
        if self.provider is None:
            self.provider = StubServer("tests.stubs.oidc_provider", "--port", str(self.provider_port))
        return self.provider.url

    def stop_provider(self) -> None:
        if self.provider is not None:
            self.provider.stop()
            self.provider = None

    def stop(self) -> None:
        self.system.stop()
        self.stop_provider()


@pytest.fixture(scope="module")
def sso(django_db_setup, llm_stub: StubServer) -> Iterator[SsoSystem]:
    sso = SsoSystem(llm_stub)
    try:
        sso.system.start(beat=False)
        yield sso
    finally:
        sso.stop()


def test_the_system_boots_without_the_provider_and_refuses_clearly(sso, live_db) -> None:
    sso.stop_provider()  # not started yet when this test runs first, as it does in one process
    with sso.system.client() as client:
        assert client.get("/healthz").status_code == 200
        login = client.get("/login/")
        assert login.status_code == 200 and "Sign in with Stub IdP" in login.text
        refused = client.get("/oidc/authenticate/?next=/")
        assert refused.status_code == 503 and 'data-reason="provider_unavailable"' in refused.text
        assert refused.headers["Retry-After"] == "10"
    assert AuditLog.objects.filter(
        action=AuditLog.Action.OIDC_SIGN_IN_REFUSED, details__reason="provider_unavailable"
    ).exists()


def test_the_button_leads_to_the_chat_and_logout_to_the_provider(sso, browser, live_db) -> None:
    provider = sso.start_provider()
    sub = "browser-" + str(free_port())
    httpx.post(
        f"{provider}/_user",
        json={"sub": sub, "preferred_username": "bea", "email": "bea@example.com", "groups": ["acme-users"]},
        timeout=10,
    ).raise_for_status()
    base = sso.system.url
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{base}/")
        assert "/login/" in page.url
        page.get_by_role("link", name="Sign in with Stub IdP").click()
        page.wait_for_url(f"{base}/")
        page.get_by_label("Message", exact=True).wait_for()
        identity = OidcIdentity.objects.select_related("user").get(subject=sub)
        assert Membership.objects.filter(user=identity.user, tenant__name="acme", role="member").exists()

        send(page, "hello from single sign-on [[tokens=12]]")
        assert wait_reply(page, "done").split()[0] == "t0"
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web-chat-after-single-sign-on.png"))

        page.get_by_role("button", name="Log out").click()
        page.wait_for_url(f"{base}/login/")
        ends = httpx.get(f"{provider}/_log", timeout=10).json()
        assert any(e["path"] == "/end_session" and e["query"].get("id_token_hint") for e in ends)
        page.goto(f"{base}/")
        assert "/login/" in page.url  # the local session ended too
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    actions = set(AuditLog.objects.filter(actor_user=identity.user).values_list("action", flat=True))
    assert {AuditLog.Action.OIDC_USER_CREATED, AuditLog.Action.OIDC_SIGN_IN} <= actions


def test_a_group_removed_at_the_provider_ends_open_streams_at_the_next_sign_in(sso, live_db) -> None:
    provider = sso.start_provider()
    sub = f"streamer-{uuid.uuid4().hex[:8]}"

    def groups(*names: str) -> None:
        body = {"sub": sub, "preferred_username": "streamer", "groups": list(names)}
        httpx.post(f"{provider}/_user", json=body, timeout=10).raise_for_status()

    groups("acme-users")
    with httpx.Client(base_url=sso.system.url, follow_redirects=True, timeout=30) as browser:
        chat = browser.get("/oidc/authenticate/?next=/")  # the provider, the callback, the chat
        assert chat.status_code == 200 and chat.url.path == "/", chat.text[:300]
        sent = browser.post(
            "/v1/session/message",
            json={"message": "hello [[tokens=3]]"},
            headers={"X-CSRFToken": browser.cookies["csrftoken"]},
        )
        assert sent.status_code == 202, sent.text
        sid = sent.json()["session_id"]
        with browser.stream("GET", f"/v1/sessions/{sid}/stream") as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()
            for line in lines:
                if line.startswith("data:") and json.loads(line[5:])["type"] == "assistant.final":
                    break
            groups("unmapped")  # removed from acme at the provider; they sign in again elsewhere
            with httpx.Client(base_url=sso.system.url, follow_redirects=True, timeout=30) as other:
                again = other.get("/oidc/authenticate/?next=/")
            assert again.status_code == 403 and 'data-reason="no_access"' in again.text
            removed_at = time.monotonic()
            event = None
            for line in lines:
                if line == "event: error":
                    event = json.loads(next(lines)[5:])
                    break
            took = time.monotonic() - removed_at
    assert event is not None and event["error"]["code"] == "membership_removed", event
    assert took < 10, f"the open stream lasted {took:.1f}s after the membership went"
