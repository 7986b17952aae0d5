"""Sign in with the identity provider (issue 21): the code flow end to end against the stub provider."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from somaagent.models import AuditLog, OidcIdentity
from tests.somaagent.conftest import new_user
from tests.somaagent.oidc.flow import (
    CLIENT_ID,
    audit_actions,
    authorize_redirect,
    provider_answer,
    refusal_reason,
    sign_in,
)

pytestmark = pytest.mark.django_db


def test_no_issuer_no_button_and_the_routes_are_gone(settings) -> None:
    from somaagent.identity.oidc.conf import OidcSettings

    settings.SOMA_OIDC = OidcSettings()
    client = Client()
    for page in ("/login/", "/admin/login/"):
        html = client.get(page).content.decode()
        assert "sso-sign-in" not in html and "Sign in with" not in html
        assert 'name="password"' in html
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404


def test_both_login_pages_offer_the_provider(provider) -> None:
    client = Client()
    chat = client.get("/login/?next=/c/11111111-1111-1111-1111-111111111111/").content.decode()
    assert "Sign in with Stub IdP" in chat
    assert 'href="/oidc/authenticate/?next=%2Fc%2F11111111-1111-1111-1111-111111111111%2F"' in chat
    admin = client.get("/admin/login/?next=/admin/").content.decode()
    assert "Sign in with Stub IdP" in admin and 'href="/oidc/authenticate/?next=%2Fadmin%2F"' in admin
    assert provider.log() == []  # showing the button asks the provider nothing


def test_first_sign_in_creates_the_user_and_lands_in_the_chat(provider) -> None:
    sub = provider.user(
        preferred_username="ada", email="ada@example.com", given_name="Ada", groups=["acme-users"]
    )
    client = Client()
    authorize = authorize_redirect(client, next_url="/")
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(f"{provider.url}/authorize?")
    assert query["response_type"] == ["code"] and query["client_id"] == [CLIENT_ID]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert len(query["state"][0]) >= 32 and len(query["nonce"][0]) >= 32
    assert query["redirect_uri"] == ["http://testserver/oidc/callback/"]

    response = client.get(provider_answer(authorize))
    assert response.status_code == 302 and response["Location"] == "/"
    token_call = provider.log("/token")[-1]["form"]
    assert len(token_call["code_verifier"]) >= 43  # PKCE: the verifier goes with the code

    identity = OidcIdentity.objects.select_related("user").get(subject=sub)
    assert identity.issuer == provider.url and identity.last_sign_in_at is not None
    user = identity.user
    assert (user.username, user.email, user.first_name) == ("ada", "ada@example.com", "Ada")
    assert not user.has_usable_password()
    chat = client.get("/")
    assert chat.status_code == 200 and b"acme" in chat.content
    assert audit_actions(actor_user=user) == [
        AuditLog.Action.OIDC_USER_CREATED,
        AuditLog.Action.OIDC_ROLE_CHANGED,
        AuditLog.Action.OIDC_SIGN_IN,
    ]

    # The second sign-in finds the same user by issuer + sub: no second user.
    provider.user(sub, preferred_username="ada-renamed", email="ada@new.example.com", groups=["acme-users"])
    assert sign_in(Client()).status_code == 302
    assert OidcIdentity.objects.filter(subject=sub).count() == 1
    user.refresh_from_db()
    assert user.username == "ada" and user.email == "ada@new.example.com"


def test_an_email_address_never_links_to_an_existing_account(provider) -> None:
    local = new_user("grace", email="grace@example.com", is_superuser=True, is_staff=True)
    provider.user(preferred_username="grace", email="grace@example.com", groups=["acme-users"])
    client = Client()
    assert sign_in(client).status_code == 302
    signed_in = get_user_model().objects.get(pk=client.session["_auth_user_id"])
    assert signed_in.pk != local.pk
    assert signed_in.username.startswith("grace-") and not signed_in.is_superuser


def test_refused_auto_creation_until_an_administrator_links_the_account(provider, settings) -> None:
    import dataclasses

    settings.SOMA_OIDC = dataclasses.replace(settings.SOMA_OIDC, create_users=False)
    users_before = get_user_model().objects.count()
    sub = provider.user(preferred_username="newcomer", groups=["acme-users"])
    refused = sign_in(Client())
    assert refused.status_code == 403 and refusal_reason(refused) == "no_account"
    assert "ask an administrator" in refused.content.decode()
    assert get_user_model().objects.count() == users_before
    entry = AuditLog.objects.get(action=AuditLog.Action.OIDC_SIGN_IN_REFUSED)
    assert entry.details["reason"] == "no_account" and entry.details["subject"] == sub

    existing = new_user("newcomer-local")
    OidcIdentity.objects.create(user=existing, issuer=provider.url, subject=sub)
    client = Client()
    assert sign_in(client).status_code == 302
    assert int(client.session["_auth_user_id"]) == existing.pk


def test_a_deactivated_user_is_refused(provider) -> None:
    sub = provider.user(groups=["acme-users"])
    assert sign_in(Client()).status_code == 302
    get_user_model().objects.filter(soma_oidc_identities__subject=sub).update(is_active=False)
    refused = sign_in(Client())
    assert refused.status_code == 403 and refusal_reason(refused) == "account_deactivated"


def test_logout_ends_the_local_session_and_the_providers(provider) -> None:
    provider.user(groups=["acme-users"])
    client = Client()
    assert sign_in(client).status_code == 302
    response = client.post("/logout/")
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{provider.url}/end_session"
    query = parse_qs(target.query)
    assert query["post_logout_redirect_uri"] == ["http://testserver/login/"]
    assert query["client_id"] == [CLIENT_ID] and query["id_token_hint"][0].count(".") == 2
    assert client.get("/")["Location"].startswith("/login/")  # the local session is gone


def test_admin_logout_of_a_provider_session_goes_to_the_provider(provider) -> None:
    provider.user(groups=["soma-staff"])
    client = Client()
    assert sign_in(client, next_url="/admin/").status_code == 302
    response = client.post("/admin/logout/")
    assert response.status_code == 302 and response["Location"].startswith(f"{provider.url}/end_session?")


def test_logout_of_a_password_session_stays_local(provider) -> None:
    user = new_user()
    client = Client()
    client.force_login(user)
    response = client.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"


def test_next_may_not_leave_the_site(provider) -> None:
    provider.user(groups=["acme-users"])
    response = sign_in(Client(), next_url="https://evil.example/steal")
    assert response.status_code == 302 and response["Location"] == "/"
    response = sign_in(Client(), next_url="/c/11111111-1111-1111-1111-111111111111/")
    assert response["Location"] == "/c/11111111-1111-1111-1111-111111111111/"
