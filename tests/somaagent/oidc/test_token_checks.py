"""Every check on the provider's answer fails closed (issue 21): a refusal page, an audit entry, no user."""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from somaagent.models import AuditLog, OidcIdentity
from tests.live import free_port
from tests.somaagent.oidc.flow import (
    CLIENT_ID,
    CLIENT_SECRET,
    authorize_redirect,
    provider_answer,
    refusal_reason,
    sign_in,
)

pytestmark = pytest.mark.django_db


def refused(response, reason: str, status: int = 403) -> None:
    assert response.status_code == status, response.content[:500]
    assert refusal_reason(response) == reason
    assert "_auth_user_id" not in response.wsgi_request.session
    entry = AuditLog.objects.filter(action=AuditLog.Action.OIDC_SIGN_IN_REFUSED).first()
    assert entry is not None and entry.details["reason"] == reason


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ({"aud": "another-app"}, "wrong_audience"),
        ({"aud": ["soma-test", "another-app"]}, "wrong_audience"),  # several audiences, no azp
        ({"iss": "http://evil.example"}, "wrong_issuer"),
        ({"exp_offset": -120}, "expired"),  # beyond the 30 s clock-skew leeway
        ({"bad_signature": True}, "bad_signature"),
        ({"alg_none": True}, "bad_algorithm"),
        ({"nonce": "not-the-nonce-we-sent"}, "nonce_mismatch"),
    ],
)
def test_a_spoiled_id_token_is_refused_and_nobody_is_created(provider, tamper, reason) -> None:
    sub = provider.user(groups=["acme-users"])
    provider.tamper(**tamper)
    users = get_user_model().objects.count()
    refused(sign_in(Client()), reason)
    assert get_user_model().objects.count() == users
    assert not OidcIdentity.objects.filter(subject=sub).exists()


def test_a_token_within_the_clock_skew_leeway_is_accepted(provider) -> None:
    provider.user(groups=["acme-users"])
    provider.tamper(exp_offset=-5)
    assert sign_in(Client()).status_code == 302


def test_a_replayed_callback_state_is_refused(provider) -> None:
    provider.user(groups=["acme-users"])
    client = Client()
    callback = provider_answer(authorize_redirect(client))
    assert client.get(callback).status_code == 302
    again = client.get(callback)  # same browser (still signed in as before): the state was used
    assert again.status_code == 400 and refusal_reason(again) == "unknown_state"
    refused(Client().get(callback), "unknown_state", 400)  # another browser never had it


def test_a_nonce_from_an_earlier_sign_in_is_refused(provider) -> None:
    provider.user(groups=["acme-users"])
    client = Client()
    first = authorize_redirect(client)
    old_nonce = parse_qs(urlsplit(first).query)["nonce"][0]
    assert client.get(provider_answer(first)).status_code == 302
    provider.tamper(nonce=old_nonce)  # the provider (or an attacker) replays the old ID token's nonce
    refused(sign_in(Client()), "nonce_mismatch")


def test_a_state_made_up_by_an_attacker_is_refused(provider) -> None:
    client = Client()
    authorize_redirect(client)  # this browser has a state of its own, not the attacker's
    refused(client.get("/oidc/callback/?code=stolen&state=forged"), "unknown_state", 400)
    assert provider.log("/token") == []  # the code never went to the provider


def test_rotated_keys_are_picked_up(provider) -> None:
    provider.user(groups=["acme-users"])
    assert sign_in(Client()).status_code == 302
    assert sign_in(Client()).status_code == 302
    assert len(provider.log("/jwks")) == 1  # the key set is kept while its keys sign
    provider.control("/_rotate")
    assert sign_in(Client()).status_code == 302
    assert len(provider.log("/jwks")) == 2  # an unknown key id fetched the key set again


def test_a_key_the_provider_withdrew_is_not_trusted_once_the_cached_key_set_is_stale(
    provider, settings
) -> None:
    # The key set is kept as long as discovery (SOMA_OIDC_DISCOVERY_CACHE_SECONDS; 0 here, so
    # it is stale at once): a key rotated out at the provider (compromised, retired) must not
    # stay trusted for the life of the process because the cache still holds it.
    settings.SOMA_OIDC = dataclasses.replace(settings.SOMA_OIDC, discovery_cache_seconds=0)
    provider.user(groups=["acme-users"])
    assert sign_in(Client()).status_code == 302  # the first key is cached
    provider.control("/_rotate")  # the provider publishes only the new key now
    provider.tamper(retired_key=True)  # a token signed with the withdrawn key, under its key id
    refused(sign_in(Client()), "unknown_key")
    provider.tamper()
    assert sign_in(Client()).status_code == 302  # the new key signs


def test_a_provider_that_refuses_the_code_is_a_refusal(provider) -> None:
    provider.user(groups=["acme-users"])
    client = Client()
    callback = provider_answer(authorize_redirect(client))
    code = parse_qs(urlsplit(callback).query)["code"][0]
    # The code is spent at the provider first (a client that saw it, with a verifier of its own):
    # the provider then refuses ours.
    spent = httpx.post(
        f"{provider.url}/token",
        data={"grant_type": "authorization_code", "code": code, "code_verifier": "x" * 43},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    assert spent.status_code == 400
    refused(client.get(callback), "code_refused")


def test_the_providers_own_error_is_shown(provider) -> None:
    client = Client()
    authorize = authorize_redirect(client)
    state = parse_qs(urlsplit(authorize).query)["state"][0]
    response = client.get(f"/oidc/callback/?error=access_denied&error_description=User+said+no&state={state}")
    refused(response, "provider_error")
    assert "access_denied" in response.content.decode() and "User said no" in response.content.decode()
    refused(client.get(f"/oidc/callback/?code=x&state={state}"), "unknown_state", 400)  # that state is spent


def test_discovery_failing_is_a_clear_503_not_a_redirect(provider) -> None:
    provider.control("/_fail", {"discovery": 500})
    response = Client().get("/oidc/authenticate/")
    refused(response, "provider_unavailable", 503)
    assert response["Retry-After"] == "10"
    assert "cannot be reached" in response.content.decode()


def test_an_unreachable_provider_is_a_clear_503(provider, settings) -> None:
    from somaagent.identity.oidc.provider import forget_provider

    settings.SOMA_OIDC = dataclasses.replace(settings.SOMA_OIDC, issuer=f"http://127.0.0.1:{free_port()}")
    forget_provider()
    refused(Client().get("/oidc/authenticate/"), "provider_unavailable", 503)


def test_a_discovery_document_for_another_issuer_is_refused(provider, settings) -> None:
    from somaagent.identity.oidc.provider import forget_provider

    # The same server under another name: its document names the issuer it really is.
    settings.SOMA_OIDC = dataclasses.replace(
        settings.SOMA_OIDC, issuer=provider.url.replace("127.0.0.1", "localhost")
    )
    forget_provider()
    response = Client().get("/oidc/authenticate/")
    refused(response, "provider_unavailable", 503)
    assert "another issuer" in response.content.decode()


def test_keys_unreachable_at_the_callback_refuse_the_sign_in(provider) -> None:
    provider.user(groups=["acme-users"])
    client = Client()
    callback = provider_answer(authorize_redirect(client))
    provider.control("/_fail", {"jwks": 503})
    refused(client.get(callback), "provider_unavailable", 503)


def test_a_key_id_the_provider_does_not_publish_is_refused(provider) -> None:
    provider.user(groups=["acme-users"])
    assert sign_in(Client()).status_code == 302  # the key set is cached now
    provider.tamper(kid="never-published")
    refused(sign_in(Client()), "unknown_key")
    assert len(provider.log("/jwks")) == 2  # asked once more (a rotation?), then refused


def test_a_token_without_a_key_id_may_use_the_providers_only_key(provider) -> None:
    provider.user(groups=["acme-users"])
    provider.tamper(no_kid=True)
    assert sign_in(Client()).status_code == 302


def test_an_overlong_code_is_refused_before_the_provider_sees_it(provider) -> None:
    client = Client()
    state = parse_qs(urlsplit(authorize_redirect(client)).query)["state"][0]
    refused(client.get(f"/oidc/callback/?code={'c' * 5000}&state={state}"), "no_code", 400)
    assert provider.log("/token") == []


def test_a_flood_of_forged_callbacks_is_cut_off_before_it_fills_the_audit_log(provider, settings) -> None:
    import random
    import time

    settings.SOMA = dataclasses.replace(settings.SOMA, login_attempts_per_address_per_minute=3)
    if 60 - time.time() % 60 < 8:  # a window that has just begun
        time.sleep(60 - time.time() % 60 + 0.05)
    ip = f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
    answers = [Client().get(f"/oidc/callback/?code=x&state=forged-{i}", REMOTE_ADDR=ip) for i in range(6)]
    assert [a.status_code for a in answers] == [400, 400, 400, 429, 429, 429]
    assert 1 <= int(answers[-1]["Retry-After"]) <= 60 and refusal_reason(answers[-1]) == "rate_limited"
    assert AuditLog.objects.filter(action=AuditLog.Action.OIDC_SIGN_IN_REFUSED, ip=ip).count() == 3
    provider.user(groups=["acme-users"])
    assert sign_in(Client(REMOTE_ADDR=ip)).status_code == 302  # a real sign-in is not held back
