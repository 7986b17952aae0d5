"""A turn's route: escalation decision → chain of profiles (escalation first, dialogue after)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from conversations.turn.end import turn_ended
from conversations.turn.route import route_record, turn_route
from somaagent.models import ModelProfile

pytestmark = pytest.mark.django_db


def make(role: str, model: str, priority: int = 0, **kw) -> ModelProfile:
    return ModelProfile.objects.create(
        role=role, model=model, base_url=f"http://models.invalid/{model}/v1", priority=priority, **kw
    )


def models(route) -> list[str]:
    return [t.model for t in route.chain]


def test_dialogue_profiles_by_priority_when_not_escalating() -> None:
    make("dialogue", "second", priority=2)
    make("dialogue", "first", priority=1)
    make("dialogue", "off", priority=0, enabled=False)
    make("dialogue", "staging-only", deployment_mode="STAGING")
    make("escalation", "big")
    route = turn_route(message="hello there", metadata={})
    assert models(route) == ["first", "second"]
    assert route.escalation is None and not route.escalated


def test_an_escalated_turn_tries_escalation_profiles_then_the_dialogue_chain() -> None:
    make("dialogue", "small")
    make("escalation", "big-2", priority=5)
    make("escalation", "big-1", priority=1)
    route = turn_route(message="hello", metadata={"escalate": True})
    assert models(route) == ["big-1", "big-2", "small"]
    assert route.escalation == {
        "escalated": True,
        "reason": "requested",
        "detail": "the client asked for escalation (metadata.escalate)",
        "profile": route.chain[0].label,
    }
    assert route.chain[0].label.startswith("escalation:big-1#")


def test_a_rule_escalates_by_itself() -> None:
    make("dialogue", "small")
    make("escalation", "big")
    route = turn_route(message="We may have a security breach on the VPN", metadata={})
    assert route.escalated and route.escalation is not None and route.escalation["reason"] == "risk_tag"
    assert models(route) == ["big", "small"]


def test_without_an_escalation_profile_the_final_says_so() -> None:
    make("dialogue", "small")
    route = turn_route(message="hi", metadata={"escalate": True})
    assert models(route) == ["small"] and not route.escalated
    assert route.escalation is not None
    assert route.escalation["escalated"] is False and route.escalation["profile"] is None
    assert "no escalation profile" in route.escalation["detail"]


def test_the_env_default_ends_the_chain_when_there_are_no_dialogue_profiles(settings) -> None:
    settings.SOMA = replace(settings.SOMA, llm_base_url="http://env.invalid/v1", llm_model="env-model")
    make("escalation", "big")
    assert models(turn_route(message="hi", metadata={"escalate": True})) == ["big", "env-model"]
    assert models(turn_route(message="hi", metadata={})) == ["env-model"]


def test_no_model_at_all_is_an_empty_chain() -> None:
    assert turn_route(message="hi", metadata={}).chain == []


@pytest.mark.django_db(transaction=True)  # foreign keys checked at each commit, as in production
def test_the_turns_end_stores_its_route_record() -> None:
    from conversations.models import EventType, Session, SessionEvent, Turn, TurnAnalysis
    from conversations.turn.claim import turn_claim
    from conversations.turn.finish import turn_finish
    from tests.conftest import make_tenant_key

    tenant: Any = make_tenant_key().tenant
    # Stored without being queued: the run's live worker would otherwise claim it first.
    session = Session.objects.create(tenant=tenant, last_seq=1)
    event = SessionEvent.objects.create(
        session=session, seq=1, type=EventType.USER_MESSAGE, role="user", payload={"message": "hi"}
    )
    turn = Turn.objects.create(tenant=tenant, session=session, user_event=event)
    claim = turn_claim(turn_id=turn.pk, owner="test", ended=turn_ended)
    assert claim is not None
    route = turn_route(message="hi", metadata={})
    route.attempts.append({"model": "m", "error": "timeout"})
    turn_finish(
        claim=claim,
        type=EventType.ASSISTANT_ERROR,
        data={"code": "llm_timeout", "message": "slow", "retryable": True},
        ended=turn_ended,
        analysis=route_record(route=route, answered=False),
    )
    row = TurnAnalysis.objects.get(turn_id=claim.turn_id)
    assert row.attempts == [{"model": "m", "error": "timeout"}] and row.intent == route.analysis.intent
    assert row.profile == ""
