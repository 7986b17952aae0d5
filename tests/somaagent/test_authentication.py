"""API keys, scopes, JWTs and rate limits, through the real URL routing and DRF stack (in-process)."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest
from django.test import Client
from rest_framework_simplejwt.tokens import AccessToken

from somaagent.identity.apikeys import api_key_authenticate, api_key_revoke
from somaagent.models import ApiKey, AuditLog, Membership
from tests.somaagent.conftest import client_for, member, new_key, new_tenant, new_user

pytestmark = pytest.mark.django_db

MISSING_SESSION = "/v1/sessions/7b0c5a52-9d1e-4d2f-8f8e-0c1b2a3d4e5f"


def error_code(response) -> str:
    return response.json()["error"]["code"]


# --- API keys ---------------------------------------------------------------------------


def test_only_a_hash_is_stored_and_the_key_works(settings):
    key, raw = new_key(new_tenant())
    assert raw.startswith(f"soma_{key.prefix}_")
    stored = ApiKey.objects.filter(pk=key.pk).values()[0]
    assert raw not in str(stored) and raw.split("_", 2)[2] not in str(stored)
    assert client_for(raw).get("/v1/sessions").status_code == 200


def test_revoked_key_is_refused_everywhere():
    key, raw = new_key(new_tenant())
    api_key_revoke(prefix=key.prefix)
    response = client_for(raw).get("/v1/sessions")
    assert response.status_code == 401 and error_code(response) == "unauthenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")
    sse = Client().get(f"{MISSING_SESSION}/stream", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert sse.status_code == 401 and sse.json()["error"]["code"] == "unauthenticated"
    assert api_key_authenticate(raw) is None


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token abc",
        "Bearer soma_",
        "Bearer soma_abc_def",
        "Bearer soma_" + "a" * 12 + "_" + "b" * 42,
        "Bearer soma_" + "A" * 12 + "_" + "b" * 43,
        "Bearer soma_" + "a" * 12 + "_" + "b" * 43 + "\u00e9",
        "Bearer " + "x" * 10_000,
        "Bearer not.a.jwt",
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoxfQ.bad",
    ],
)
def test_malformed_credentials_answer_401_json(header):
    client = Client()
    response = client.get("/v1/sessions", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] == "unauthenticated"
    sse = client.get(f"{MISSING_SESSION}/stream", HTTP_AUTHORIZATION=header)
    assert sse.status_code == 401


def test_right_prefix_wrong_secret_is_refused():
    _, raw = new_key(new_tenant())
    forged = raw[:-4] + ("AAAA" if not raw.endswith("AAAA") else "BBBB")
    assert api_key_authenticate(forged) is None
    assert client_for(forged).get("/v1/sessions").status_code == 401


def test_a_key_is_never_written_to_the_logs(caplog):
    key, raw = new_key(new_tenant())
    api_key_revoke(prefix=key.prefix)
    forged = f"soma_{key.prefix}_" + "Z" * 43
    caplog.set_level(logging.DEBUG)
    for credential in (raw, forged):
        client_for(credential).get("/v1/sessions")
        client_for(credential).post("/v1/session/message", {"message": "hi"}, format="json")
        Client().get(f"{MISSING_SESSION}/stream", HTTP_AUTHORIZATION=f"Bearer {credential}")
    assert caplog.records, "the requests should have logged something (e.g. 401 warnings)"
    for record in caplog.records:
        text = f"{record.getMessage()} {record.__dict__}"
        assert raw not in text and forged not in text
        assert raw.split("_", 2)[2] not in text


def test_last_used_is_recorded():
    key, raw = new_key(new_tenant())
    assert key.last_used_at is None
    client_for(raw).get("/v1/sessions")
    key.refresh_from_db()
    assert key.last_used_at is not None


# --- scopes -------------------------------------------------------------------------------


def test_read_only_key_cannot_write():
    _, raw = new_key(new_tenant(), ["conversations:read"])
    client = client_for(raw)
    assert client.get("/v1/sessions").status_code == 200
    response = client.post("/v1/session/message", {"message": "hi"}, format="json")
    assert response.status_code == 403 and error_code(response) == "insufficient_scope"
    assert response.json()["error"]["details"]["required_scope"] == "conversations:write"
    from conversations.models import Session

    assert not Session.objects.exists()


def test_write_only_key_cannot_read_or_stream():
    _, raw = new_key(new_tenant(), ["conversations:write"])
    assert client_for(raw).get("/v1/sessions").status_code == 403
    sse = Client().get(f"{MISSING_SESSION}/stream", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert sse.status_code == 403 and sse.json()["error"]["code"] == "insufficient_scope"


def test_admin_scope_alone_manages_but_does_not_chat():
    _, raw = new_key(new_tenant(), ["admin"])
    client = client_for(raw)
    assert client.get("/v1/keys").status_code == 200
    assert client.get("/v1/sessions").status_code == 403
    me = client.get("/v1/me").json()
    assert me["role"] == "admin" and me["scopes"] == ["admin"]


def test_default_key_has_every_scope_but_admin():
    _, raw = new_key(new_tenant())
    client = client_for(raw)
    assert sorted(client.get("/v1/me").json()["scopes"]) == [
        "attachments:write",
        "conversations:read",
        "conversations:write",
    ]
    response = client.get("/v1/keys")
    assert response.status_code == 403 and error_code(response) == "insufficient_scope"


# --- tenant admins manage keys through the API ---------------------------------------------


def test_tenant_admin_creates_lists_and_revokes_keys():
    tenant = new_tenant()
    _, admin_raw = new_key(tenant, ["admin"])
    admin = client_for(admin_raw)
    created = admin.post(
        "/v1/keys", {"name": "bot", "scopes": ["conversations:read"]}, format="json", REMOTE_ADDR="10.1.2.3"
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["key"].startswith(f"soma_{body['prefix']}_") and body["scopes"] == ["conversations:read"]
    listed = admin.get("/v1/keys").json()["keys"]
    assert body["prefix"] in [k["prefix"] for k in listed]
    assert all("key" not in k for k in listed) and body["key"] not in str(listed)
    assert client_for(body["key"]).get("/v1/sessions").status_code == 200
    revoked = admin.delete(f"/v1/keys/{body['prefix']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert client_for(body["key"]).get("/v1/sessions").status_code == 401
    audit = AuditLog.objects.filter(target=f"key:{body['prefix']}").order_by("created_at")
    assert [a.action for a in audit] == ["api_key.created", "api_key.revoked"]
    assert audit[0].ip == "10.1.2.3" and audit[0].actor.startswith("key:")
    assert body["key"] not in str(list(audit.values()))


def test_tenant_admin_cannot_touch_another_tenants_keys():
    victim_key, victim_raw = new_key(new_tenant())
    _, admin_raw = new_key(new_tenant(), ["admin"])
    response = client_for(admin_raw).delete(f"/v1/keys/{victim_key.prefix}")
    assert response.status_code == 404 and error_code(response) == "not_found"
    assert client_for(victim_raw).get("/v1/sessions").status_code == 200
    assert victim_key.prefix not in str(client_for(admin_raw).get("/v1/keys").json())


def test_key_creation_rejects_unknown_scopes_and_fields():
    tenant = new_tenant()
    _, admin_raw = new_key(tenant, ["admin"])
    admin = client_for(admin_raw)
    assert admin.post("/v1/keys", {"scopes": ["root"]}, format="json").status_code == 400
    assert admin.post("/v1/keys", {"name": "x", "tenant": "other"}, format="json").status_code == 400
    assert ApiKey.objects.for_tenant(tenant).count() == 1


def test_a_tenant_admin_cannot_lift_a_keys_rate_limit():
    # The ceiling is the server's SOMA_RATE_LIMIT_PER_MINUTE (600 by default, as here).
    tenant = new_tenant()
    _, admin_raw = new_key(tenant, ["admin"])
    admin = client_for(admin_raw)
    for unlimited in (0, 601, 10**9):
        response = admin.post("/v1/keys", {"rate_limit_per_minute": unlimited}, format="json")
        assert response.status_code == 400, (unlimited, response.content)
        assert "only staff" in str(response.json()["error"]["details"]["rate_limit_per_minute"])
    tighter = admin.post("/v1/keys", {"rate_limit_per_minute": 30}, format="json")
    assert tighter.status_code == 201 and tighter.json()["rate_limit_per_minute"] == 30
    assert ApiKey.objects.for_tenant(tenant).count() == 2


# --- JWT ------------------------------------------------------------------------------------


def obtain(username: str, password: str = "pw-Secret-123", **extra):
    return client_for().post(
        "/v1/auth/token", {"username": username, "password": password, **extra}, format="json"
    )


def test_jwt_pair_for_a_member_and_its_use():
    tenant = new_tenant()
    user = new_user()
    member(user, tenant)
    response = obtain(user.username)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["tenant"]["id"] == str(tenant.pk) and body["role"] == "member"
    assert AccessToken(body["access"])["tenant"] == str(tenant.pk)
    client = client_for(token=body["access"])
    assert client.get("/v1/sessions").status_code == 200
    assert client.get("/v1/me").json()["via"] == "jwt"
    assert client.get("/v1/keys").status_code == 403  # members do not manage keys
    sse = Client().get(f"{MISSING_SESSION}/stream", HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert sse.status_code == 404  # authenticated, and the session is not theirs
    refreshed = client_for().post("/v1/auth/token/refresh", {"refresh": body["refresh"]}, format="json")
    assert refreshed.status_code == 200
    assert client_for(token=refreshed.json()["access"]).get("/v1/sessions").status_code == 200


def test_jwt_refused_cases():
    tenant, other = new_tenant(), new_tenant()
    loner = new_user()
    assert obtain(loner.username).status_code == 401  # no membership
    user = new_user()
    member(user, tenant)
    assert obtain(user.username, "wrong").status_code == 401
    assert obtain(user.username, tenant=other.name).status_code == 401
    member(user, other)
    ambiguous = obtain(user.username)
    assert ambiguous.status_code == 400 and "tenant" in ambiguous.json()["error"]["details"]
    chosen = obtain(user.username, tenant=other.name)
    assert chosen.status_code == 200 and chosen.json()["tenant"]["name"] == other.name
    assert obtain(user.username, extra_field=1).status_code == 400


def test_removing_a_membership_invalidates_access_and_refresh():
    tenant = new_tenant()
    user = new_user()
    membership = member(user, tenant)
    body = obtain(user.username).json()
    membership.delete()
    assert client_for(token=body["access"]).get("/v1/sessions").status_code == 401
    refreshed = client_for().post("/v1/auth/token/refresh", {"refresh": body["refresh"]}, format="json")
    assert refreshed.status_code == 401


def test_a_user_removed_from_every_tenant_is_not_enrolled_again():
    from somaagent.identity.principal import principal_for_user
    from somaagent.models import Membership

    newcomer = new_user()
    assert principal_for_user(newcomer).tenant.name == "default"  # first login: enrolled once
    added = new_user()
    member(added, new_tenant())  # added by an administrator
    for user in (newcomer, added):
        Membership.objects.filter(user=user).delete()  # ... and removed by one
        web = Client()
        web.force_login(user)
        for path in ("/v1/sessions", "/"):
            response = web.get(path)
            assert response.status_code == 403, (path, response.status_code)
        assert error_code(web.get("/v1/sessions")) == "no_membership"
        assert not Membership.objects.filter(user=user).exists()


def test_role_changes_apply_to_existing_tokens():
    tenant = new_tenant()
    user = new_user()
    membership = member(user, tenant, role="admin")
    body = obtain(user.username).json()
    assert client_for(token=body["access"]).get("/v1/keys").status_code == 200
    Membership.objects.filter(pk=membership.pk).update(role="member")
    assert client_for(token=body["access"]).get("/v1/keys").status_code == 403


def test_jwt_scopes_can_only_narrow():
    tenant = new_tenant()
    user = new_user()
    member(user, tenant)
    body = obtain(user.username, scopes=["conversations:read", "admin"]).json()
    assert body["scopes"] == ["conversations:read"]  # a member cannot get admin by asking
    client = client_for(token=body["access"])
    assert client.get("/v1/sessions").status_code == 200
    assert client.post("/v1/session/message", {"message": "x"}, format="json").status_code == 403


def test_expired_tampered_and_refresh_as_access_tokens_are_refused():
    tenant = new_tenant()
    user = new_user()
    member(user, tenant)
    body = obtain(user.username).json()
    expired = AccessToken(body["access"])
    expired.set_exp(lifetime=-timedelta(seconds=5))
    tampered = body["access"][:-3] + ("aaa" if not body["access"].endswith("aaa") else "bbb")
    for token in (str(expired), tampered, body["refresh"]):
        response = client_for(token=token).get("/v1/sessions")
        assert response.status_code == 401 and error_code(response) == "unauthenticated"
    bad_refresh = client_for().post("/v1/auth/token/refresh", {"refresh": body["access"]}, format="json")
    assert bad_refresh.status_code == 401


def test_login_attempts_are_rate_limited(settings):
    import dataclasses

    settings.SOMA = dataclasses.replace(settings.SOMA, login_attempts_per_minute=3)
    _wait_for_fresh_window()
    client = client_for()
    codes = [
        client.post(
            "/v1/auth/token", {"username": "x", "password": "y"}, format="json", REMOTE_ADDR="10.9.9.9"
        ).status_code
        for _ in range(4)
    ]
    assert codes == [401, 401, 401, 429]


# --- rate limits --------------------------------------------------------------------------------


def _wait_for_fresh_window(margin: float = 5.0) -> None:
    """Start near the beginning of a one-minute window so the requests share one."""
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.05)


def test_per_key_rate_limit_answers_429_with_retry_after():
    tenant = new_tenant()
    _, limited = new_key(tenant, rate_limit_per_minute=2)
    _, other = new_key(tenant)
    _wait_for_fresh_window()
    client = client_for(limited)
    codes = [client.get("/v1/sessions").status_code for _ in range(2)]
    response = client.get("/v1/sessions")
    assert codes == [200, 200] and response.status_code == 429
    assert error_code(response) == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60
    sse = Client().get(f"{MISSING_SESSION}/stream", HTTP_AUTHORIZATION=f"Bearer {limited}")
    assert sse.status_code == 429 and sse["Retry-After"]
    assert client_for(other).get("/v1/sessions").status_code == 200  # limits are per key


def test_openapi_documents_the_new_endpoints_and_bearer_auth():
    import json

    response = Client().get("/v1/openapi.json", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    doc = json.loads(response.content)
    for path in (
        "/v1/auth/token",
        "/v1/auth/token/refresh",
        "/v1/me",
        "/v1/keys",
        "/v1/keys/{prefix}",
        "/v1/budget",
    ):
        assert path in doc["paths"], path
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
