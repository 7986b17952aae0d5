"""The provider's groups decide memberships, roles and staff at every sign-in (issue 21)."""

from __future__ import annotations

import dataclasses

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from somaagent.environment import ConfigurationError
from somaagent.identity.oidc.conf import Grant, OidcSettings, load, parse_group_map
from somaagent.identity.oidc.mapping import access_from_claims
from somaagent.identity.principal import principal_for_membership, principal_lapsed
from somaagent.models import AuditLog, Membership, OidcIdentity
from tests.somaagent.conftest import member, new_tenant
from tests.somaagent.oidc.flow import refusal_reason, sign_in

pytestmark = pytest.mark.django_db


def roles_of(sub: str) -> dict[str, str]:
    user = get_user_model().objects.get(soma_oidc_identities__subject=sub)
    return dict(Membership.objects.filter(user=user).values_list("tenant__name", "role"))


def user_of(sub: str):
    return OidcIdentity.objects.select_related("user").get(subject=sub).user


def role_changes(sub: str) -> list[tuple[str, dict]]:
    rows = AuditLog.objects.filter(
        action=AuditLog.Action.OIDC_ROLE_CHANGED, actor_user=user_of(sub)
    ).order_by("created_at")
    return [(row.tenant_name, row.details) for row in rows]


def test_groups_map_to_memberships_roles_and_staff(provider) -> None:
    sub = provider.user(groups=["acme-users", "acme-admins", "beta-users", "soma-ops", "unmapped"])
    assert sign_in(Client()).status_code == 302
    assert roles_of(sub) == {"acme": "admin", "beta": "member", "ops": "admin"}  # highest role wins
    assert user_of(sub).is_staff and not user_of(sub).is_superuser
    changes = role_changes(sub)
    assert ("acme", {"tenant_role": {"from": None, "to": "admin"}}) in changes
    assert ("", {"staff": {"from": False, "to": True}}) in changes
    assert len(changes) == 4

    # Nothing changed at the provider: nothing changes here, nothing is logged as a change.
    assert sign_in(Client()).status_code == 302
    assert len(role_changes(sub)) == 4


def test_a_group_removed_at_the_provider_removes_access_at_the_next_sign_in(provider) -> None:
    sub = provider.user(groups=["acme-admins", "beta-users", "soma-staff"])
    client = Client()
    assert sign_in(client).status_code == 302
    user = user_of(sub)
    beta = Membership.objects.select_related("tenant", "user").get(user=user, tenant__name="beta")
    open_stream = principal_for_membership(beta, via="session")  # what an open stream holds
    assert principal_lapsed(open_stream) is None

    provider.user(sub, groups=["acme-users"])  # out of beta and staff; admin → member in acme
    assert sign_in(Client()).status_code == 302
    assert roles_of(sub) == {"acme": "member"}
    user.refresh_from_db()
    assert not user.is_staff
    lapsed = principal_lapsed(open_stream)  # open streams of beta end at their next check
    assert lapsed is not None and lapsed.code == "membership_removed"
    changes = role_changes(sub)[-3:]
    assert ("beta", {"tenant_role": {"from": "member", "to": None}}) in changes
    assert ("acme", {"tenant_role": {"from": "admin", "to": "member"}}) in changes
    assert ("", {"staff": {"from": True, "to": False}}) in changes


def test_no_mapped_group_left_refuses_and_removes_everything(provider) -> None:
    sub = provider.user(groups=["acme-users"])
    old_browser = Client()
    assert sign_in(old_browser).status_code == 302
    provider.user(sub, groups=["unmapped"])
    refused = sign_in(Client())
    assert refused.status_code == 403 and refusal_reason(refused) == "no_access"
    assert roles_of(sub) == {}
    entry = AuditLog.objects.get(action=AuditLog.Action.OIDC_SIGN_IN_REFUSED)
    assert entry.details["reason"] == "no_access" and entry.details["subject"] == sub
    # The browser still signed in from before now gets no chat: no tenant, and no re-enrolment.
    assert old_browser.get("/").status_code == 403


def test_a_brand_new_person_without_a_mapped_group_gets_nothing(provider) -> None:
    provider.user(groups=[])
    refused = sign_in(Client())
    assert refused.status_code == 403 and refusal_reason(refused) == "no_access"


def test_without_a_mapping_memberships_are_left_to_administrators(provider, settings) -> None:
    settings.SOMA_OIDC = dataclasses.replace(settings.SOMA_OIDC, groups_claim="", group_map={})
    sub = provider.user(groups=["acme-admins"])
    assert sign_in(Client()).status_code == 302
    assert roles_of(sub) == {}  # first chat enrols them in the default tenant, as for any new user
    tenant = new_tenant()
    member(user_of(sub), tenant, "admin")
    assert sign_in(Client()).status_code == 302
    assert roles_of(sub) == {tenant.name: "admin"}  # untouched


def test_a_nested_claim_path_and_a_single_string_claim(settings) -> None:
    config = OidcSettings(
        issuer="https://idp.example",
        groups_claim="realm_access.roles",
        group_map=parse_group_map('{"chat": "acme:member", "ops": "staff"}'),
    )
    assert access_from_claims({"realm_access": {"roles": ["chat", 7, None]}}, config).roles == {
        "acme": "member"
    }
    assert access_from_claims({"realm_access": {"roles": "ops"}}, config).staff
    assert access_from_claims({"realm_access": "nonsense"}, config).empty
    assert access_from_claims({}, config).empty


def test_the_mapping_format_and_its_errors() -> None:
    parsed = parse_group_map(
        '{"a": "acme:member", "b": ["staff", "t:with:colons:admin"], "c": "x:tenant_admin"}'
    )
    assert parsed == {
        "a": (Grant(tenant="acme", role="member"),),
        "b": (Grant(staff=True), Grant(tenant="t:with:colons", role="admin")),
        "c": (Grant(tenant="x", role="admin"),),
    }
    for bad, says in [
        ("not json", "not valid JSON"),
        ('["acme:member"]', "must be a JSON object"),
        ('{"a": "acme"}', "is not '<tenant>:member'"),
        ('{"a": "acme:owner"}', "is not '<tenant>:member'"),
        ('{"a": 3}', "each grant is a string"),
        ('{"a": []}', "grants nothing"),
    ]:
        with pytest.raises(ConfigurationError, match=says):
            parse_group_map(bad)


def test_settings_come_from_the_environment_and_are_checked(monkeypatch) -> None:
    for name in ("SOMA_OIDC_ISSUER", "SOMA_OIDC_CLIENT_ID", "SOMA_OIDC_CLIENT_SECRET", "SOMA_OIDC_GROUP_MAP"):
        monkeypatch.delenv(name, raising=False)
    assert not load().enabled
    monkeypatch.setenv("SOMA_OIDC_ISSUER", "https://login.acme.example/realms/acme/")
    with pytest.raises(ConfigurationError) as problem:
        load()
    assert "SOMA_OIDC_CLIENT_ID is not set" in str(problem.value)
    assert "SOMA_OIDC_CLIENT_SECRET is not set" in str(problem.value)
    monkeypatch.setenv("SOMA_OIDC_CLIENT_ID", "soma")
    monkeypatch.setenv("SOMA_OIDC_CLIENT_SECRET", "s3cret")
    monkeypatch.setenv("SOMA_OIDC_GROUP_MAP", '{"chat-users": "acme:member"}')
    config = load()
    assert config.issuer == "https://login.acme.example/realms/acme"
    assert config.button_label == "Sign in with login.acme.example"
    assert config.groups_claim == "groups" and config.maps_claims and config.create_users
    monkeypatch.setenv("SOMA_OIDC_ISSUER", "http://login.acme.example")
    monkeypatch.setenv("SOMA_DEPLOYMENT_MODE", "PROD")
    with pytest.raises(ConfigurationError, match="https URL in PROD"):
        load()


def test_staff_only_may_use_the_admin_but_is_not_enrolled_in_a_tenant(provider) -> None:
    sub = provider.user(groups=["soma-staff"])
    client = Client()
    assert sign_in(client, next_url="/admin/").status_code == 302
    assert client.get("/admin/").status_code == 200
    assert client.get("/").status_code == 403  # the chat: no tenant, and no default enrolment
    assert roles_of(sub) == {}
