"""Driving a real sign-in: Django's test client on our side, the stub OpenID provider over real HTTP.

``sign_in`` follows the browser's path: our ``/oidc/authenticate/`` → the provider's
``/authorize`` (an HTTP request to the stub, which answers with a redirect back) → our
``/oidc/callback/``. It returns the callback's response, so a test sees what the user sees.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.test import Client

from tests.live import StubServer

CLIENT_ID = "soma-test"
CLIENT_SECRET = "soma-test-secret"
GROUP_MAP = (
    '{"acme-users": "acme:member", "acme-admins": "acme:admin", "beta-users": "beta:member",'
    ' "soma-ops": ["staff", "ops:admin"], "soma-staff": "staff"}'
)


class Provider:
    """The stub provider's controls."""

    def __init__(self, server: StubServer) -> None:
        self.url = server.url

    def control(self, path: str, body: Any = None) -> Any:
        response = httpx.post(f"{self.url}{path}", json=body, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def user(self, sub: str | None = None, **claims: Any) -> str:
        """Who signs in next (a fresh ``sub`` unless given); returns the ``sub``."""
        sub = sub or f"sub-{uuid.uuid4().hex}"
        self.control("/_user", {"sub": sub, **claims})
        return sub

    def tamper(self, **how: Any) -> None:
        self.control("/_tamper", how)

    def log(self, path: str | None = None) -> list[dict[str, Any]]:
        entries = httpx.get(f"{self.url}/_log", timeout=10).json()
        return [e for e in entries if path is None or e["path"] == path]


def oidc_settings(issuer: str, **overrides: Any) -> Any:
    from somaagent.identity.oidc.conf import OidcSettings, parse_group_map

    base = OidcSettings(
        issuer=issuer,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        provider_name="Stub IdP",
        groups_claim="groups",
        group_map=parse_group_map(GROUP_MAP),
    )
    return dataclasses.replace(base, **overrides)


def authorize_redirect(client: Client, *, next_url: str = "/") -> str:
    """Click the button: where our start route sends the browser (the provider's /authorize)."""
    response = client.get("/oidc/authenticate/", {"next": next_url})
    assert response.status_code == 302, response.content[:500]
    return str(response["Location"])


def provider_answer(authorize_url: str) -> str:
    """The provider's redirect back to us (path and query of our callback)."""
    back = httpx.get(authorize_url, follow_redirects=False, timeout=10)
    assert back.status_code == 302, back.text
    parts = urlsplit(back.headers["location"])
    assert parts.path == "/oidc/callback/", back.headers["location"]
    return f"{parts.path}?{parts.query}"


def sign_in(client: Client, *, next_url: str = "/") -> Any:
    """The whole round trip; the callback's response."""
    return client.get(provider_answer(authorize_redirect(client, next_url=next_url)))


def refusal_reason(response: Any) -> str:
    """The reason code the refusal page shows (``data-reason``)."""
    html = response.content.decode()
    marker = 'data-reason="'
    assert marker in html, html[:800]
    return html.split(marker, 1)[1].split('"', 1)[0]


def audit_actions(**filters: Any) -> list[str]:
    from somaagent.models import AuditLog

    return list(AuditLog.objects.filter(**filters).order_by("created_at").values_list("action", flat=True))
