"""How each call of a round is decided before anything runs."""

from __future__ import annotations

import uuid

import pytest

from conversations.llm.port import ToolCallDelta
from conversations.turn.tool_calls import ToolCall, assemble_calls, plan_calls
from conversations.turn.types import ClaimedTurn
from somaagent.errors import PolicyDenied
from somaagent.models import Tenant
from somaagent.policy.types import Decision
from tests.tools.conftest import tool_settings
from tools.breaker import breaker_record
from tools.models import ToolSetting
from tools.selectors import tools_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def claim() -> ClaimedTurn:
    tenant = Tenant.objects.create(name=f"t-{uuid.uuid4().hex[:8]}")
    return ClaimedTurn(
        turn_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        tenant_id=tenant.pk,
        persona_id=None,
        user_event_id=1,
        user_event_uuid=uuid.uuid4(),
        user_seq=1,
        owner="test",
        attempt=1,
        restart=False,
    )


def plan(claim: ClaimedTurn, *calls: tuple[str, str], used: int = 0):
    tools = tools_for(tenant_id=claim.tenant_id, persona_id=None)
    planned = plan_calls(
        claim=claim,
        calls=[ToolCall(call_id=f"c{i}", name=n, arguments=a) for i, (n, a) in enumerate(calls)],
        tools=tools,
        used=used,
    )
    return [(p.decided[0], p.decided[1]["error"]) if p.decided else ("run", None) for p in planned]


def test_assembles_streamed_pieces_by_index() -> None:
    deltas = [
        ToolCallDelta(index=1, id="b", name="python", arguments='{"co'),
        ToolCallDelta(index=0, id="a", name="current_time", arguments=""),
        ToolCallDelta(index=1, arguments='de": "1"}'),
        ToolCallDelta(index=0, arguments="{}"),
    ]
    calls = assemble_calls(deltas)
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [
        ("a", "current_time", "{}"),
        ("b", "python", '{"code": "1"}'),
    ]


def test_a_call_without_an_id_gets_one() -> None:
    assert assemble_calls([ToolCallDelta(index=0, name="x")])[0].call_id.startswith("call_")


def test_each_kind_of_bad_call_is_decided_without_running(claim: ClaimedTurn) -> None:
    ToolSetting.objects.create(tenant_id=claim.tenant_id, tool="current_time", enabled=False)
    assert plan(
        claim,
        ("python", '{"code": "print(1)"}'),
        ("python", "{bad"),
        ("nope", "{}"),
        ("current_time", "{}"),
        ("python", '{"code": 5}'),
        ("python", "{}"),
    ) == [
        ("run", None),
        ("error", "invalid_arguments"),
        ("error", "unknown_tool"),
        ("blocked", "tool_not_enabled"),
        ("error", "invalid_arguments"),
        ("error", "invalid_arguments"),
    ]


def test_the_per_turn_limit_counts_earlier_rounds(claim: ClaimedTurn) -> None:
    with tool_settings(max_calls_per_turn=3):
        decided = plan(claim, ("current_time", "{}"), ("current_time", "{}"), used=2)
    assert decided == [("run", None), ("blocked", "tool_call_limit")]


def test_an_open_breaker_blocks(claim: ClaimedTurn) -> None:
    with tool_settings(breaker_failures=1, breaker_open_seconds=30):
        breaker_record(tool="current_time", tenant_id=claim.tenant_id, ok=False)
        assert plan(claim, ("current_time", "{}")) == [("blocked", "circuit_open")]


def test_policy_is_asked_for_each_call_and_denial_blocks(claim: ClaimedTurn, monkeypatch) -> None:
    asked = []

    def deny_python(**kwargs):
        asked.append(kwargs)
        if kwargs["resource"] == "python":
            raise PolicyDenied("Policy denies tool.execute on python.")
        return Decision(allowed=True)

    monkeypatch.setattr("conversations.turn.tool_calls.policy_check", deny_python)
    assert plan(claim, ("python", '{"code": "1"}'), ("current_time", "{}")) == [
        ("blocked", "policy_denied"),
        ("run", None),
    ]
    assert [(a["action"], a["resource"], a["tenant"]) for a in asked] == [
        ("tool.execute", "python", str(claim.tenant_id)),
        ("tool.execute", "current_time", str(claim.tenant_id)),
    ]
