"""Operators' commands: create_api_key, revoke_api_key, set_budget, rotate_fernet_keys."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from somaagent import secrets
from somaagent.models import ApiKey, AuditLog, Budget, LlmCredential, Persona
from tests.somaagent.conftest import client_for, new_key, new_tenant

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_api_key_prints_the_key_last_with_its_scopes():
    output = run("create_api_key", "--tenant", "cmd-tenant", "--name", "ci", "--scopes", "conversations:read")
    raw = output.strip().splitlines()[-1]
    key = ApiKey.objects.get(prefix=raw.split("_")[1])
    assert key.scopes == ["conversations:read"] and key.tenant.name == "cmd-tenant"
    assert client_for(raw).get("/v1/sessions").status_code == 200
    assert client_for(raw).post("/v1/session/message", {"message": "x"}, format="json").status_code == 403
    entry = AuditLog.objects.get(target=f"key:{key.prefix}")
    assert entry.action == "api_key.created" and entry.actor.startswith("cli:")
    with pytest.raises(CommandError):
        run("create_api_key", "--tenant", "cmd-tenant", "--scopes", "root")


def test_revoke_api_key_by_prefix():
    key, raw = new_key(new_tenant())
    output = run("revoke_api_key", key.prefix)
    assert "now revoked" in output and raw not in output
    assert client_for(raw).get("/v1/sessions").status_code == 401
    assert "already revoked" in run("revoke_api_key", key.prefix)
    assert AuditLog.objects.filter(action="api_key.revoked", target=f"key:{key.prefix}").count() == 1
    with pytest.raises(CommandError, match="no API key"):
        run("revoke_api_key", "000000000000")


def test_set_budget_for_tenant_and_persona():
    tenant = new_tenant()
    persona = Persona.objects.create(tenant=tenant, name="helper")
    run("set_budget", "--tenant", tenant.name, "--daily-tokens", "1000", "--monthly-tokens", "20000")
    run("set_budget", "--tenant", tenant.name, "--persona", str(persona.pk), "--daily-tokens", "50")
    run("set_budget", "--tenant", tenant.name, "--daily-tokens", "none")
    whole = Budget.objects.get(tenant=tenant, persona=None)
    assert (whole.daily_tokens, whole.monthly_tokens) == (None, 20000)  # the monthly limit was kept
    own = Budget.objects.get(tenant=tenant, persona=persona)
    assert (own.daily_tokens, own.monthly_tokens) == (50, None)
    assert AuditLog.objects.filter(tenant=tenant, action="budget.changed").count() == 3


@pytest.mark.parametrize(
    "args",
    [
        ["--tenant", "no-such-tenant", "--daily-tokens", "5"],
        ["--tenant", "{tenant}", "--daily-tokens", "-5"],
        ["--tenant", "{tenant}", "--daily-tokens", "lots"],
        ["--tenant", "{tenant}"],
        ["--tenant", "{tenant}", "--persona", "7b0c5a52-9d1e-4d2f-8f8e-0c1b2a3d4e5f", "--daily-tokens", "5"],
    ],
)
def test_set_budget_refuses_bad_input_and_changes_nothing(args):
    tenant = new_tenant()
    with pytest.raises(CommandError):
        run("set_budget", *[a.replace("{tenant}", tenant.name) for a in args])
    assert not Budget.objects.exists()


@pytest.fixture
def fernet_keys(settings):
    def use(*keys: str) -> None:
        settings.FERNET_KEYS = list(keys)
        secrets._fernet.cache_clear()

    yield use
    secrets._fernet.cache_clear()


def test_rotate_fernet_keys_reencrypts_with_the_newest_key(fernet_keys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    fernet_keys(old)
    credential = LlmCredential.objects.create(name="openai", secret_encrypted=secrets.encrypt("sk-live-123"))
    fernet_keys(new, old)
    assert "1 credential" in run("rotate_fernet_keys")
    credential.refresh_from_db()
    assert Fernet(new.encode()).decrypt(credential.secret_encrypted.encode()) == b"sk-live-123"
    fernet_keys(new)  # the old key can go now
    assert secrets.decrypt(credential.secret_encrypted) == "sk-live-123"
    entry = AuditLog.objects.get(action="credential.rotated")
    assert "sk-live-123" not in str(entry.details)


def test_rotation_is_all_or_nothing(fernet_keys):
    lost, kept = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    fernet_keys(kept)
    good = LlmCredential.objects.create(name="good", secret_encrypted=secrets.encrypt("a"))
    fernet_keys(lost)
    LlmCredential.objects.create(name="orphan", secret_encrypted=secrets.encrypt("b"))
    fernet_keys(Fernet.generate_key().decode(), kept)
    before = LlmCredential.objects.get(pk=good.pk).secret_encrypted
    with pytest.raises(CommandError, match="orphan"):
        run("rotate_fernet_keys")
    assert LlmCredential.objects.get(pk=good.pk).secret_encrypted == before
