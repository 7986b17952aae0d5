"""Token budgets against the real Redis (embedded or server): reserve, settle, rebuild, refuse."""

from __future__ import annotations

import random
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from somaagent.audit import Actor
from somaagent.budgets import counters as cnt
from somaagent.budgets.periods import current_periods
from somaagent.budgets.services import budget_check, budget_counters, budget_reserve, budget_set
from somaagent.errors import BudgetExceeded, ValidationFailed
from somaagent.models import AuditLog, Persona, TokenUsage
from somaagent.redis_client import sync_redis
from tests.somaagent.conftest import client_for, new_key, new_tenant

CLI = Actor(label="cli:test")


def usage(tenant, tokens: int, *, persona=None, when=None) -> TokenUsage:
    return TokenUsage.objects.create(
        tenant=tenant,
        persona_id=persona.pk if persona else None,
        session_id=uuid.uuid4(),
        turn_id=uuid.uuid4(),
        model="m",
        prompt_tokens=tokens // 2,
        completion_tokens=tokens - tokens // 2,
        total_tokens=tokens,
        created_at=when or datetime.now(UTC),
    )


def settle(turn_id, tenant, persona, actual):
    counters = budget_counters(tenant_id=tenant.pk, persona_id=persona.pk if persona else None)
    return cnt.settle(turn_id=turn_id, counters=counters, actual=actual)


def test_periods_reset_at_utc_midnight_and_month_start():
    day, month = current_periods(datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC))
    assert day.label == "d20261231" and month.label == "m202612"
    assert day.end == datetime(2027, 1, 1, tzinfo=UTC) == month.end
    assert day.seconds_left(datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC)) == 30


@pytest.mark.django_db
def test_counter_is_rebuilt_from_the_usage_table_when_redis_lost_it():
    tenant = new_tenant()
    budget_set(tenant=tenant, daily_tokens=1000, monthly_tokens=None, actor=CLI)
    usage(tenant, 300)
    usage(tenant, 200)
    usage(tenant, 999, when=datetime.now(UTC) - timedelta(days=40))  # another month: not counted
    counter = budget_counters(tenant_id=tenant.pk, persona_id=None)[0]
    assert counter.key.endswith(f"budget:tokens:{tenant.pk}:all:{counter.period.label}")
    sync_redis().delete(counter.key)
    budget_check(tenant_id=tenant.pk, persona_id=None, estimate=500)  # 500 + 500 fits in 1000
    assert int(sync_redis().get(counter.key)) == 500
    with pytest.raises(BudgetExceeded):
        budget_check(tenant_id=tenant.pk, persona_id=None, estimate=501)


@pytest.mark.django_db
def test_reserve_then_settle_replaces_the_estimate_by_the_real_usage():
    tenant = new_tenant()
    persona = Persona.objects.create(tenant=tenant, name="p")
    budget_set(tenant=tenant, persona=persona, daily_tokens=1000, monthly_tokens=5000, actor=CLI)
    turn = uuid.uuid4()
    budget_reserve(
        turn_id=turn, tenant_id=tenant.pk, persona_id=persona.pk, prompt_tokens=100, completion_tokens=500
    )
    budget_reserve(
        turn_id=turn, tenant_id=tenant.pk, persona_id=persona.pk, prompt_tokens=100, completion_tokens=500
    )
    counters = budget_counters(tenant_id=tenant.pk, persona_id=persona.pk)
    assert cnt.read_used(counters) == [600, 600, 600, 600]  # reserving again for one turn is a no-op
    with pytest.raises(BudgetExceeded) as caught:
        budget_reserve(
            turn_id=uuid.uuid4(),
            tenant_id=tenant.pk,
            persona_id=persona.pk,
            prompt_tokens=1,
            completion_tokens=500,
        )
    assert caught.value.details["scope"] == "persona" and caught.value.details["period"] == "day"
    assert settle(turn, tenant, persona, 120) == 600
    assert cnt.read_used(counters) == [120, 120, 120, 120]
    # A settle without a reservation (Redis lost it) charges the usage in full rather than nothing.
    assert settle(turn, tenant, persona, 120) == 0
    assert cnt.read_used(counters) == [240, 240, 240, 240]


@pytest.mark.django_db
def test_each_later_model_round_grows_the_reservation_within_the_limits():
    tenant = new_tenant()
    budget_set(tenant=tenant, daily_tokens=2000, monthly_tokens=None, actor=CLI)
    turn = uuid.uuid4()
    args = {"turn_id": turn, "tenant_id": tenant.pk, "persona_id": None}
    budget_reserve(**args, prompt_tokens=100, completion_tokens=500)
    budget_reserve(**args, prompt_tokens=300, completion_tokens=500, more=True)  # round 2: a longer prompt
    counters = budget_counters(tenant_id=tenant.pk, persona_id=None)
    assert cnt.read_used(counters) == [1400, 1400]
    assert cnt.reservation_of(turn)["amount"] == 1400
    with pytest.raises(BudgetExceeded):  # round 3 would pass the daily limit: refused, nothing taken
        budget_reserve(**args, prompt_tokens=200, completion_tokens=500, more=True)
    assert cnt.read_used(counters) == [1400, 1400]
    assert settle(turn, tenant, None, 900) == 1400  # the whole grown reservation is replaced
    assert cnt.read_used(counters) == [900, 900]


@pytest.mark.django_db(transaction=True)
def test_parallel_turns_cannot_overspend_by_more_than_one_reservation():
    tenant = new_tenant()
    limit, prompt, completion = 20_000, 200, 800
    reservation = prompt + completion
    budget_set(tenant=tenant, daily_tokens=limit, monthly_tokens=None, actor=CLI)
    spent: list[int] = []
    refused = []
    lock = threading.Lock()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            while True:
                turn = uuid.uuid4()
                try:
                    budget_reserve(
                        turn_id=turn,
                        tenant_id=tenant.pk,
                        persona_id=None,
                        prompt_tokens=prompt,
                        completion_tokens=completion,
                    )
                except BudgetExceeded:
                    with lock:
                        refused.append(turn)
                    return
                actual = rng.randint(prompt, reservation)  # the model never writes more than reserved
                usage_row = TokenUsage(
                    tenant=tenant,
                    session_id=uuid.uuid4(),
                    turn_id=turn,
                    total_tokens=actual,
                    prompt_tokens=actual,
                )
                usage_row.save()
                settle(turn, tenant, None, actual)
                with lock:
                    spent.append(actual)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    total = sum(spent)
    assert total <= limit + reservation, (total, limit)
    assert total > limit - reservation  # and the budget really was used up before turns were refused
    assert len(refused) == 16
    counter = budget_counters(tenant_id=tenant.pk, persona_id=None)[0]
    assert int(sync_redis().get(counter.key)) == total  # nothing left reserved after settling
    sync_redis().delete(counter.key)
    assert cnt.read_used([counter]) == [total]  # and a rebuild from the table agrees


@pytest.mark.django_db
def test_gateway_answers_429_with_retry_after_when_the_budget_is_spent():
    from conversations.models import Session

    tenant = new_tenant()
    _, raw = new_key(tenant)
    budget_set(tenant=tenant, daily_tokens=100, monthly_tokens=None, actor=CLI)
    usage(tenant, 100)
    response = client_for(raw).post("/v1/session/message", {"message": "hello"}, format="json")
    assert response.status_code == 429, response.content
    assert response.json()["error"]["code"] == "budget_exceeded"
    day = current_periods()[0]
    assert abs(int(response["Retry-After"]) - day.seconds_left()) <= 5
    assert not Session.objects.for_tenant(tenant).exists()


@pytest.mark.django_db
def test_persona_budget_limits_only_that_persona():
    tenant = new_tenant()
    _, raw = new_key(tenant)
    tight = Persona.objects.create(tenant=tenant, name="tight")
    loose = Persona.objects.create(tenant=tenant, name="loose")
    budget_set(tenant=tenant, persona=tight, daily_tokens=None, monthly_tokens=50, actor=CLI)
    usage(tenant, 50, persona=tight)
    client = client_for(raw)
    refused = client.post(
        "/v1/session/message", {"message": "hi", "persona_id": str(tight.pk)}, format="json"
    )
    assert refused.status_code == 429 and refused.json()["error"]["details"]["period"] == "month"
    accepted = client.post(
        "/v1/session/message", {"message": "hi", "persona_id": str(loose.pk)}, format="json"
    )
    assert accepted.status_code == 202


@pytest.mark.django_db
def test_budget_changes_are_validated_and_audited():
    tenant, other = new_tenant(), new_tenant()
    foreign = Persona.objects.create(tenant=other, name="x")
    with pytest.raises(ValidationFailed):
        budget_set(tenant=tenant, persona=foreign, daily_tokens=1, monthly_tokens=None, actor=CLI)
    with pytest.raises(ValidationFailed):
        budget_set(tenant=tenant, daily_tokens=-1, monthly_tokens=None, actor=CLI)
    budget_set(tenant=tenant, daily_tokens=10, monthly_tokens=None, actor=CLI)
    budget_set(tenant=tenant, daily_tokens=20, monthly_tokens=300, actor=CLI)
    entries = list(AuditLog.objects.filter(tenant=tenant, action="budget.changed").order_by("created_at"))
    assert [e.details["after"]["daily_tokens"] for e in entries] == [10, 20]
    assert entries[1].details["before"] == {"daily_tokens": 10, "monthly_tokens": None}
    assert entries[1].actor == "cli:test"


@pytest.mark.django_db
def test_budget_endpoint_shows_limits_and_use_to_tenant_admins():
    tenant = new_tenant()
    _, admin = new_key(tenant, ["admin"])
    _, plain = new_key(tenant)
    budget_set(tenant=tenant, daily_tokens=1000, monthly_tokens=None, actor=CLI)
    usage(tenant, 250)
    body = client_for(admin).get("/v1/budget").json()
    day = body["budgets"][0]["day"]
    assert (day["limit"], day["used"], day["remaining"]) == (1000, 250, 750)
    assert body["budgets"][0]["month"]["limit"] is None
    assert client_for(plain).get("/v1/budget").status_code == 403


@pytest.mark.django_db
def test_a_turns_usage_is_stored_once_whatever_records_it_again():
    from somaagent.budgets.services import turn_usage_record

    tenant = new_tenant()
    turn = {"turn_id": uuid.uuid4(), "tenant_id": tenant.pk, "persona_id": None, "session_id": uuid.uuid4()}
    turn_usage_record(
        **turn, model="m", usage={"prompt_tokens": 10, "completion_tokens": 5}, event_type="assistant.final"
    )
    # e.g. a redelivered finish
    turn_usage_record(
        **turn, model="m", usage={"prompt_tokens": 99, "completion_tokens": 99}, event_type="assistant.final"
    )
    rows = list(TokenUsage.objects.filter(turn_id=turn["turn_id"]).values_list("total_tokens", flat=True))
    assert rows == [15]


@pytest.fixture
def redis_away(settings):
    """This process's Redis client points at a Redis server that has stopped (nothing listens)."""
    from somaagent import redis_client
    from tests.servers import RedisServer

    server = RedisServer()
    server.destroy()
    settings.REDIS_URL = server.url
    redis_client._sync.reset()
    try:
        yield
    finally:
        redis_client._sync.reset()


@pytest.mark.django_db
def test_without_redis_a_limited_budget_is_refused_not_let_through(redis_away):
    from somaagent.errors import BudgetUnavailable

    tenant = new_tenant()
    budget_set(tenant=tenant, daily_tokens=1000, monthly_tokens=None, actor=CLI)
    usage(tenant, 100)  # the usage table has room: it does not know what running replies reserved
    with pytest.raises(BudgetUnavailable) as refused:
        budget_check(tenant_id=tenant.pk, persona_id=None, estimate=10)
    assert refused.value.status_code == 503 and refused.value.retry_after >= 1
    with pytest.raises(BudgetUnavailable):
        budget_reserve(
            turn_id=uuid.uuid4(), tenant_id=tenant.pk, persona_id=None, prompt_tokens=5, completion_tokens=5
        )


@pytest.mark.django_db
def test_without_redis_a_tenant_without_limits_is_not_refused(redis_away):
    tenant = new_tenant()
    budget_check(tenant_id=tenant.pk, persona_id=None, estimate=10)
    budget_reserve(
        turn_id=uuid.uuid4(), tenant_id=tenant.pk, persona_id=None, prompt_tokens=5, completion_tokens=5
    )
