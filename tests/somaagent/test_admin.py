"""The admin: staff change keys, budgets, policy data, settings and credentials through services (audited)."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django_celery_beat.models import PeriodicTask

from somaagent.models import (
    ApiKey,
    AuditLog,
    Budget,
    DeadLetter,
    LlmCredential,
    OutboxMessage,
    Persona,
    PolicyData,
    UISetting,
)
from tests.live import free_port
from tests.somaagent.conftest import member, new_key, new_tenant, new_user

pytestmark = pytest.mark.django_db

IP = "192.0.2.7"


@pytest.fixture
def staff() -> Client:
    user = new_user("staff-" + new_tenant().name, is_staff=True, is_superuser=True)
    client = Client(REMOTE_ADDR=IP)
    client.force_login(user)
    return client


def last_audit(action: str) -> AuditLog:
    entry = AuditLog.objects.filter(action=action).order_by("-created_at").first()
    assert entry is not None, f"no {action} audit entry"
    return entry


def test_budget_saved_in_admin_is_audited_with_who_and_where(staff):
    tenant = new_tenant()
    response = staff.post(
        "/admin/somaagent/budget/add/",
        {"tenant": tenant.pk, "persona": "", "daily_tokens": "5000", "monthly_tokens": ""},
    )
    assert response.status_code == 302, response.content[:2000]
    budget = Budget.objects.get(tenant=tenant)
    assert (budget.daily_tokens, budget.monthly_tokens) == (5000, None)
    entry = last_audit("budget.changed")
    assert entry.actor.startswith("user:staff-") and entry.ip == IP and entry.tenant == tenant
    staff.post(f"/admin/somaagent/budget/{budget.pk}/delete/", {"post": "yes"})
    assert not Budget.objects.filter(pk=budget.pk).exists()
    assert last_audit("budget.changed").details["after"] is None


def test_budget_persona_of_another_tenant_is_refused(staff):
    tenant, other = new_tenant(), new_tenant()
    foreign = Persona.objects.create(tenant=other, name="x")
    response = staff.post(
        "/admin/somaagent/budget/add/",
        {"tenant": tenant.pk, "persona": foreign.pk, "daily_tokens": "5", "monthly_tokens": ""},
    )
    assert response.status_code == 200 and b"belongs to another tenant" in response.content
    assert not Budget.objects.exists()


def test_policy_data_is_validated_versioned_and_audited(staff):
    tenant = new_tenant()
    bad = staff.post(
        "/admin/somaagent/policydata/add/",
        {"tenant": tenant.pk, "document": json.dumps({"denied_actions": ["fly"]})},
    )
    assert bad.status_code == 200 and b"unknown actions" in bad.content
    assert not PolicyData.objects.exists()
    good = staff.post(
        "/admin/somaagent/policydata/add/",
        {"tenant": tenant.pk, "document": json.dumps({"denied_actions": ["memory.write"]})},
    )
    assert good.status_code == 302
    row = PolicyData.objects.get(tenant=tenant)
    staff.post(f"/admin/somaagent/policydata/{row.pk}/change/", {"document": json.dumps({})})
    row.refresh_from_db()
    assert row.version == 2 and row.document == {} and row.updated_by.startswith("user:")
    assert AuditLog.objects.filter(action="policy_data.changed", tenant=tenant).count() == 2
    page = staff.get(f"/admin/somaagent/policydata/{row.pk}/change/")
    assert page.status_code == 200


def test_audit_log_is_read_only_in_admin(staff):
    new_key(new_tenant())
    entry = last_audit("api_key.created")
    assert staff.get("/admin/somaagent/auditlog/").status_code == 200
    assert staff.get(f"/admin/somaagent/auditlog/{entry.pk}/change/").status_code == 200  # view only
    assert staff.post(f"/admin/somaagent/auditlog/{entry.pk}/change/", {"actor": "me"}).status_code == 403
    assert staff.post(f"/admin/somaagent/auditlog/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert staff.get("/admin/somaagent/auditlog/add/").status_code == 403
    entry.refresh_from_db()
    assert entry.actor != "me"


def test_credential_secret_is_write_only_and_audited_without_it(staff):
    secret = "sk-super-secret-value-42"
    response = staff.post(
        "/admin/somaagent/llmcredential/add/", {"name": "prov", "provider": "openai", "secret": secret}
    )
    assert response.status_code == 302
    credential = LlmCredential.objects.get(name="prov")
    assert secret not in credential.secret_encrypted
    for url in ("/admin/somaagent/llmcredential/", f"/admin/somaagent/llmcredential/{credential.pk}/change/"):
        page = staff.get(url)
        assert page.status_code == 200 and secret.encode() not in page.content
        assert credential.secret_encrypted.encode() not in page.content
    entry = last_audit("credential.updated")
    assert secret not in json.dumps(entry.details) and entry.details["secret_changed"] is True
    # Saving without a new secret keeps the old one.
    staff.post(f"/admin/somaagent/llmcredential/{credential.pk}/change/", {"name": "prov", "provider": "x"})
    from somaagent.secrets import decrypt

    credential.refresh_from_db()
    assert decrypt(credential.secret_encrypted) == secret and credential.provider == "x"


def test_api_keys_created_and_revoked_in_admin_are_audited(staff):
    tenant = new_tenant()
    response = staff.post(
        "/admin/somaagent/apikey/add/",
        {
            "tenant": tenant.pk,
            "name": "admin-made",
            "scopes": ["conversations:read"],
            "rate_limit_per_minute": "",
        },
        follow=True,
    )
    assert b"copy it now" in response.content
    key = ApiKey.objects.get(tenant=tenant, name="admin-made")
    assert key.scopes == ["conversations:read"]
    staff.post("/admin/somaagent/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert [e.action for e in AuditLog.objects.filter(target=f"key:{key.prefix}").order_by("created_at")] == [
        "api_key.created",
        "api_key.revoked",
    ]


def test_ui_settings_changes_ask_the_policy_and_are_audited(staff, settings):
    import dataclasses

    from somaagent.policy.port import policy_port

    ok = staff.post("/admin/somaagent/uisetting/add/", {"key": "uploads", "document": '{"max_mb": 5}'})
    assert ok.status_code == 302 and UISetting.objects.get(key="uploads").document == {"max_mb": 5}
    assert last_audit("settings.changed").details["after"] == {"max_mb": 5}
    settings.SOMA = dataclasses.replace(settings.SOMA, opa_url=f"http://127.0.0.1:{free_port()}")
    policy_port.cache_clear()
    try:
        row = UISetting.objects.get(key="uploads")
        refused = staff.post(
            f"/admin/somaagent/uisetting/{row.pk}/change/", {"key": "uploads", "document": '{"max_mb": 1}'}
        )
    finally:
        policy_port.cache_clear()
    assert refused.status_code == 200 and b"policy_unavailable" in refused.content
    assert UISetting.objects.get(key="uploads").document == {"max_mb": 5}


def test_dead_letter_replay_is_audited(staff):
    import conversations.turn.claim  # noqa: F401  (registers the conversation.turn topic)

    letter = DeadLetter.objects.create(
        topic="conversation.turn", event={"payload": {"turn_id": "x"}, "dedupe_key": "d"}, attempts=5
    )
    staff.post("/admin/somaagent/deadletter/", {"action": "replay", "_selected_action": [letter.pk]})
    letter.refresh_from_db()
    assert letter.replayed_at is not None and OutboxMessage.objects.filter(topic="conversation.turn").exists()
    entry = last_audit("dead_letter.replayed")
    assert entry.target == f"dead_letter:{letter.pk}" and entry.ip == IP


def test_usage_admin_shows_totals_per_tenant_and_day(staff):
    from tests.somaagent.test_budgets import usage

    tenant = new_tenant()
    usage(tenant, 30)
    usage(tenant, 12)
    page = staff.get(f"/admin/somaagent/tokenusage/?tenant__id__exact={tenant.pk}")
    assert page.status_code == 200
    totals = page.context["daily_totals"]
    assert [(row["tenant__name"], row["replies"], row["total"]) for row in totals] == [(tenant.name, 2, 42)]
    assert b"usage-daily-totals" in page.content


def test_tenant_admins_without_staff_status_cannot_enter_admin():
    user = new_user()
    member(user, new_tenant(), role="admin")
    client = Client()
    client.force_login(user)
    response = client.get("/admin/somaagent/apikey/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_admin_actions_need_their_own_permission_not_just_staff():
    from django.contrib.auth.models import Permission

    tenant = new_tenant()
    key, _ = new_key(tenant)
    clerk = new_user("clerk-" + tenant.name, is_staff=True)
    clerk.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_apikey", "change_apikey", "view_deadletter"])
    )
    client = Client(REMOTE_ADDR=IP)
    client.force_login(clerk)
    page = client.get("/admin/somaagent/apikey/")
    assert page.status_code == 200 and b'value="revoke"' not in page.content
    client.post("/admin/somaagent/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is None, "a staff member without revoke_apikey revoked a key"
    assert b'value="replay"' not in client.get("/admin/somaagent/deadletter/").content

    clerk.user_permissions.add(Permission.objects.get(codename="revoke_apikey"))
    client.force_login(type(clerk).objects.get(pk=clerk.pk))  # permissions are cached per user object
    assert b'value="revoke"' in client.get("/admin/somaagent/apikey/").content
    client.post("/admin/somaagent/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None


@pytest.mark.parametrize(
    "document",
    ['{"a": "\\u0000"}', '{"a": NaN}', "[" * 100_000 + "]" * 100_000, '{"a\\u0000": 1}', '{"a": "\\ud800"}'],
    ids=["nul", "nan", "deep", "nul-key", "surrogate"],
)
def test_admin_json_fields_refuse_what_the_api_refuses(staff, document):
    """Issue 14 items 2 and 6 in the admin: a JSON field takes only what json_input accepts
    (a NUL or NaN reached PostgreSQL as a DataError, a 500); the form shows the error instead."""
    tenant = new_tenant()
    for path, data in (
        ("/admin/somaagent/uisetting/add/", {"key": "hostile", "document": document}),
        ("/admin/somaagent/policydata/add/", {"tenant": tenant.pk, "document": document}),
    ):
        response = staff.post(path, data)
        assert response.status_code == 200, (path, response.status_code)
        assert b"errorlist" in response.content, path
    assert not UISetting.objects.filter(key="hostile").exists()
    assert not PolicyData.objects.filter(tenant=tenant).exists()


@pytest.mark.parametrize("task", ["a\x00b", "x" * 300, "[" * 100_000])
def test_a_periodic_task_refused_by_its_field_is_a_form_error(staff, task):
    """django_celery_beat's form read cleaned_data['task'] after the field had refused it (a NUL,
    too long): a KeyError, a 500. Now the field's error is shown."""
    response = staff.post(
        "/admin/django_celery_beat/periodictask/add/",
        {"name": "hostile", "task": task, "args": "[]", "kwargs": "{}", "enabled": "on"},
    )
    assert response.status_code == 200 and b"errorlist" in response.content
    assert not PeriodicTask.objects.filter(name="hostile").exists()
