"""Policy and budgets in real turns: web server, Celery worker and stub model as separate processes."""

from __future__ import annotations

import uuid

import pytest
from django.db.models import Sum

from conversations.models import Session, Turn
from conversations.turn.prompt import DEFAULT_SYSTEM_PROMPT
from somaagent.audit import Actor
from somaagent.budgets.services import budget_counters, budget_set
from somaagent.models import LlmCredential, ModelProfile, Persona, TokenUsage
from somaagent.policy.data import policy_data_set
from somaagent.redis_client import sync_redis
from somaagent.tokens import tokens_of_chars
from tests.live import read_stream, wait_until
from tests.somaagent.support import scrape, value

pytestmark = pytest.mark.integration

STAFF = Actor(label="user:test-staff", is_staff=True)


def post(system, key, message, **extra):
    with system.client(key) as c:
        return c.post("/v1/session/message", json={"message": message, **extra})


def send(system, key, message, **extra):
    r = post(system, key, message, **extra)
    assert r.status_code == 202, r.text
    return r.json()


def test_gateway_answers_403_when_policy_denies_and_writes_nothing(live_system, tenant_key):
    policy_data_set(tenant=tenant_key.tenant, document={"denied_actions": ["conversation.send"]}, actor=STAFF)
    response = post(live_system, tenant_key.key, "hello")
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "policy_denied" and error["details"]["reasons"] == ["action_denied_for_tenant"]
    assert not Session.objects.for_tenant(tenant_key.tenant).exists()
    denials = value(
        scrape(f"{live_system.url}/metrics"),
        "soma_policy_denials_total",
        tenant=str(tenant_key.tenant.pk),
        action="conversation.send",
    )
    assert denials == 1
    policy_data_set(tenant=tenant_key.tenant, document={}, actor=STAFF)
    assert post(live_system, tenant_key.key, "hello [[tokens=1]]").status_code == 202


def test_turn_is_denied_when_the_sessions_persona_changed_meanwhile(live_system, tenant_key):
    allowed = Persona.objects.create(tenant=tenant_key.tenant, name="allowed")
    barred = Persona.objects.create(tenant=tenant_key.tenant, name="barred")
    policy_data_set(
        tenant=tenant_key.tenant,
        document={"personas": {str(barred.pk): {"denied_actions": ["conversation.send"]}}},
        actor=STAFF,
    )
    first = send(live_system, tenant_key.key, "[[tokens=30]] [[delay=0.05]]", persona_id=str(allowed.pk))
    sid = first["session_id"]
    second = send(live_system, tenant_key.key, "and then? [[tokens=3]]", session_id=sid)
    read_stream(live_system, tenant_key.key, sid, until=lambda e: e["type"] == "assistant.started")
    Session.objects.filter(pk=sid).update(persona=barred)  # e.g. staff moved the session to another persona
    wait_until(
        lambda: Turn.objects.filter(pk=second["turn_id"]).exclude(status__in=Turn.ACTIVE_STATUSES).exists(),
        timeout=60,
        what="the second turn to end",
    )
    events = read_stream(live_system, tenant_key.key, sid, until=lambda e: e["type"] == "assistant.error")
    finals = [e for e in events if e["type"] == "assistant.final"]
    error = events[-1]
    assert len(finals) == 1  # the first reply was already under way and finished
    assert error["data"]["code"] == "policy_denied" and error["data"]["retryable"] is False
    assert Turn.objects.get(pk=second["turn_id"]).error_code == "policy_denied"
    assert not TokenUsage.objects.filter(turn_id=second["turn_id"]).exists()  # the model was never called


def test_usage_is_recorded_per_reply_and_counted(live_system, tenant_key):
    budget_set(tenant=tenant_key.tenant, daily_tokens=1_000_000, monthly_tokens=None, actor=STAFF)
    accepted = send(live_system, tenant_key.key, "count me [[tokens=12]]")
    events = read_stream(live_system, tenant_key.key, accepted["session_id"])
    final = events[-1]["data"]
    row = wait_until(
        lambda: TokenUsage.objects.filter(turn_id=accepted["turn_id"]).first(), timeout=30, what="usage row"
    )
    assert (row.prompt_tokens, row.completion_tokens) == (
        final["usage"]["prompt_tokens"],
        final["usage"]["completion_tokens"],
    )
    assert row.completion_tokens == 12 and row.total_tokens == row.prompt_tokens + 12
    assert str(row.session_id) == accepted["session_id"] and row.model == "stub-model" and not row.estimated
    counter = budget_counters(tenant_id=tenant_key.tenant.pk, persona_id=None)[0]
    wait_until(
        lambda: int(sync_redis().get(counter.key) or 0) == row.total_tokens,
        timeout=10,
        what="the counter to be settled to the real usage",
    )


def test_turn_ends_with_budget_exceeded_when_the_budget_ran_out_meanwhile(live_system, tenant_key):
    first = send(live_system, tenant_key.key, "[[tokens=30]] [[delay=0.05]]")
    sid = first["session_id"]
    second = send(live_system, tenant_key.key, "more [[tokens=3]]", session_id=sid)
    read_stream(live_system, tenant_key.key, sid, until=lambda e: e["type"] == "assistant.started")
    budget_set(tenant=tenant_key.tenant, daily_tokens=10, monthly_tokens=None, actor=STAFF)
    wait_until(
        lambda: Turn.objects.filter(pk=second["turn_id"]).exclude(status__in=Turn.ACTIVE_STATUSES).exists(),
        timeout=60,
        what="the second turn to end",
    )
    events = read_stream(live_system, tenant_key.key, sid, until=lambda e: e["type"] == "assistant.error")
    error = events[-1]["data"]
    assert error["code"] == "budget_exceeded" and error["retryable"] is False and error["retry_after"] >= 1
    # The gateway now refuses too, with Retry-After.
    refused = post(live_system, tenant_key.key, "again")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    samples = scrape(f"{live_system.url}/metrics")
    tenant = str(tenant_key.tenant.pk)
    assert value(samples, "soma_budget_rejections_total", tenant=tenant, stage="gateway") == 1
    assert value(samples, "soma_budget_rejections_total", tenant=tenant, stage="turn") == 1


def test_parallel_turns_cannot_overspend_by_more_than_one_reservation(live_system, tenant_key):
    from django.conf import settings

    messages = [f"parallel {i} [[tokens=25]] [[delay=0.01]]" for i in range(8)]
    reservation = (
        tokens_of_chars(len(DEFAULT_SYSTEM_PROMPT) + len(messages[0]))
        + settings.SOMA.budget_completion_reserve_tokens
    )
    limit = reservation + 150
    budget_set(tenant=tenant_key.tenant, daily_tokens=limit, monthly_tokens=None, actor=STAFF)
    accepted = [send(live_system, tenant_key.key, m) for m in messages]
    turn_ids = [a["turn_id"] for a in accepted]
    wait_until(
        lambda: not Turn.objects.filter(pk__in=turn_ids, status__in=Turn.ACTIVE_STATUSES).exists(),
        timeout=120,
        what="every turn to end",
    )
    turns = list(Turn.objects.filter(pk__in=turn_ids))
    outcomes = sorted(t.error_code or t.status for t in turns)
    assert "completed" in outcomes and "budget_exceeded" in outcomes, outcomes
    assert set(outcomes) <= {"completed", "budget_exceeded"}, outcomes
    spent = TokenUsage.objects.filter(tenant=tenant_key.tenant).aggregate(s=Sum("total_tokens"))["s"] or 0
    assert spent <= limit + reservation, (spent, limit, reservation)
    counter = budget_counters(tenant_id=tenant_key.tenant.pk, persona_id=None)[0]
    wait_until(
        lambda: int(sync_redis().get(counter.key) or 0) == spent,
        timeout=10,
        what="counters settled to the recorded usage",
    )


def test_llm_credential_is_used_but_never_shown_or_logged(live_system, tenant_key, llm_stub):
    from somaagent.llm_credentials import llm_credential_save

    secret = f"sk-test-{uuid.uuid4().hex}"
    credential = llm_credential_save(
        credential=LlmCredential(name=f"cred-{uuid.uuid4().hex[:6]}"), secret=secret, actor=STAFF
    )
    profile = ModelProfile.objects.create(
        role="dialogue",
        deployment_mode=settings_mode(),
        model="stub-model",
        base_url=f"{llm_stub.url}/v1",
        credential=credential,
    )
    try:
        ok = send(live_system, tenant_key.key, "with a credential [[tokens=3]]")
        assert read_stream(live_system, tenant_key.key, ok["session_id"])[-1]["type"] == "assistant.final"
        failing = send(live_system, tenant_key.key, "[[status=401]]")
        events = read_stream(live_system, tenant_key.key, failing["session_id"])
        assert events[-1]["type"] == "assistant.error" and events[-1]["data"]["code"] == "llm_auth_failed"
        assert secret not in str(events)
    finally:
        profile.delete()
    logs = live_system.logs() + "".join(w.log_tail(5_000_000) for w in live_system.workers)
    assert secret not in logs


def settings_mode() -> str:
    from django.conf import settings

    return str(settings.DEPLOYMENT_MODE)


def test_deleting_a_session_mid_reply_releases_its_reservation(live_system, tenant_key):
    from django.conf import settings

    budget_set(tenant=tenant_key.tenant, daily_tokens=1_000_000, monthly_tokens=None, actor=STAFF)
    accepted = send(live_system, tenant_key.key, "[[tokens=200]] [[delay=0.05]]")
    sid = accepted["session_id"]
    read_stream(live_system, tenant_key.key, sid, until=lambda e: e["type"] == "assistant.delta")
    counter = budget_counters(tenant_id=tenant_key.tenant.pk, persona_id=None)[0]
    reserved = int(sync_redis().get(counter.key) or 0)
    assert reserved > settings.SOMA.budget_completion_reserve_tokens  # the reservation is held
    with live_system.client(tenant_key.key) as c:
        assert c.delete(f"/v1/sessions/{sid}").status_code == 204
    row = wait_until(
        lambda: TokenUsage.objects.filter(turn_id=accepted["turn_id"]).first(), timeout=30, what="usage row"
    )
    assert row.estimated and row.completion_tokens == 0 and row.total_tokens == row.prompt_tokens > 0
    wait_until(
        lambda: int(sync_redis().get(counter.key) or 0) == row.total_tokens,
        timeout=30,
        what="the reservation to be replaced by the prompt's cost",
    )


def test_every_model_round_of_a_tool_loop_is_reserved_and_capped(live_system, tenant_key, llm_stub):
    """Later rounds grow the reservation: a loop that would pass the budget stops instead of
    overspending it, and every request caps the reply at what was reserved for it."""
    from django.conf import settings

    from tests.tools.helpers import model_requests

    reserve = settings.SOMA.budget_completion_reserve_tokens
    budget_set(
        tenant=tenant_key.tenant, daily_tokens=reserve + reserve // 2, monthly_tokens=None, actor=STAFF
    )
    marker = f"loop-{uuid.uuid4().hex[:10]}"
    accepted = send(live_system, tenant_key.key, f"{marker} [[tool=current_time:{{}}]] [[tool_rounds=5]]")
    events = read_stream(live_system, tenant_key.key, accepted["session_id"])
    error = events[-1]["data"]
    assert events[-1]["type"] == "assistant.error" and error["code"] == "budget_exceeded", events[-1]
    assert [e["type"] for e in events].count("tool.result") == 1, "the second round was refused before it ran"
    requests = model_requests(llm_stub.url, marker)
    assert len(requests) == 1 and requests[0]["max_tokens"] == reserve
    counter = budget_counters(tenant_id=tenant_key.tenant.pk, persona_id=None)[0]
    wait_until(
        lambda: int(sync_redis().get(counter.key) or 0) <= reserve + reserve // 2,
        timeout=10,
        what="the counter to stay within the limit once settled",
    )
