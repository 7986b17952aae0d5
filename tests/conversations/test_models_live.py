"""Escalation and fallback in real turns: web + worker + stub providers over HTTP."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from conversations.models import TurnAnalysis
from somaagent.models import ModelProfile, UISetting
from tests.live import TERMINAL, free_port, read_stream

pytestmark = pytest.mark.integration

Factory = Callable[..., ModelProfile]


@pytest.fixture
def profiles(live_db, llm_stub) -> Iterator[Factory]:
    """Model profiles for one test: ``make(role, directives)`` points one at a stub "provider"."""
    made: list[ModelProfile] = []

    def make(
        role: str, directives: str = "", *, priority: int = 0, base_url: str | None = None
    ) -> ModelProfile:
        key = uuid.uuid4().hex[:8]
        prefix = f"/d/key={key}{',' + directives if directives else ''}"
        profile = ModelProfile.objects.create(
            role=role,
            deployment_mode="DEV",
            model=f"{role}-{key}",
            base_url=base_url or f"{llm_stub.url}{prefix}/v1",
            priority=priority,
        )
        made.append(profile)
        return profile

    yield make
    ModelProfile.objects.filter(pk__in=[p.pk for p in made]).delete()
    UISetting.objects.filter(key="escalation").delete()


def turn(system, key: str, message: str, **extra: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    with system.client(key) as c:
        r = c.post("/v1/session/message", json={"message": message, **extra})
    assert r.status_code == 202, r.text
    accepted = r.json()
    return accepted, read_stream(system, key, accepted["session_id"])


def calls_to(stub_url: str, profile: ModelProfile, marker: str) -> int:
    log = httpx.get(f"{stub_url}/_log").json()
    path = profile.base_url[len(stub_url) :]
    return sum(
        1 for e in log if e["path"].startswith(path) and marker in e["body"]["messages"][-1]["content"]
    )


def test_the_client_asks_for_escalation(live_system, tenant_key, profiles, llm_stub) -> None:
    dialogue = profiles("dialogue")
    escalation = profiles("escalation")
    marker = uuid.uuid4().hex
    accepted, events = turn(
        live_system, tenant_key.key, f"hi {marker} [[tokens=3]]", metadata={"escalate": True}
    )
    final = events[-1]
    assert final["type"] == "assistant.final"
    assert final["data"]["model"] == escalation.model
    assert final["data"]["escalation"] == {
        "escalated": True,
        "reason": "requested",
        "detail": "the client asked for escalation (metadata.escalate)",
        "profile": f"escalation:{escalation.model}#{escalation.pk}",
    }
    assert calls_to(llm_stub.url, escalation, marker) == 1 and calls_to(llm_stub.url, dialogue, marker) == 0
    record = TurnAnalysis.objects.get(turn_id=accepted["turn_id"])
    assert record.escalated and record.escalation_reason == "requested"
    assert record.profile == f"escalation:{escalation.model}#{escalation.pk}"
    assert (record.intent, record.sentiment) == (
        final["data"]["analysis"]["intent"],
        final["data"]["analysis"]["sentiment"],
    )


def test_no_escalation_by_default(live_system, tenant_key, profiles) -> None:
    dialogue = profiles("dialogue")
    profiles("escalation")
    _, events = turn(live_system, tenant_key.key, "What is the time in Lima? [[tokens=2]]")
    assert events[-1]["data"]["escalation"] is None
    assert events[-1]["data"]["model"] == dialogue.model
    assert events[-1]["data"]["analysis"]["intent"] == "question"


def test_thresholds_from_the_ui_setting_decide(live_system, tenant_key, profiles) -> None:
    profiles("dialogue")
    escalation = profiles("escalation")
    UISetting.objects.create(key="escalation", document={"intents": ["question"]})
    _, events = turn(live_system, tenant_key.key, "Where is the station? [[tokens=2]]")
    data = events[-1]["data"]
    assert data["escalation"]["reason"] == "intent" and data["model"] == escalation.model
    setting = UISetting.objects.get(key="escalation")
    setting.document = {"enabled": False}
    setting.save()  # as the admin saves it: every process's cached settings follow
    _, events = turn(live_system, tenant_key.key, "Where is the station? [[tokens=2]]")
    assert events[-1]["data"]["escalation"] is None


def started(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["data"] for e in events if e["type"] == "assistant.started"]


@pytest.mark.parametrize(
    ("directives", "reason"),
    [
        ("status=503", "llm_unavailable"),
        ("status=429", "llm_rate_limited"),
        ("break_after=0", "llm_stream_interrupted"),
        ("status=401", "llm_auth_failed"),
        ("dead", "llm_unreachable"),
    ],
)
def test_a_failing_provider_falls_back_and_the_stream_says_so(
    live_system, tenant_key, profiles, directives, reason
) -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1" if directives == "dead" else None
    primary = profiles("dialogue", "" if base_url else directives, priority=0, base_url=base_url)
    backup = profiles("dialogue", priority=1)
    accepted, events = turn(live_system, tenant_key.key, "[[tokens=4]]")
    assert [e["type"] for e in events if e["type"] in TERMINAL] == ["assistant.final"]
    first, second = started(events)
    assert first["model"] == primary.model and "fallback" not in first
    assert second["model"] == backup.model and second["restart"] is False
    assert second["fallback"]["from"] == f"dialogue:{primary.model}#{primary.pk}"
    assert second["fallback"]["to"] == f"dialogue:{backup.model}#{backup.pk}"
    assert second["fallback"]["reason"] == reason and second["fallback"]["message"]
    assert second["reply_to"] == accepted["event_id"]
    types = [e["type"] for e in events]
    assert types.index("assistant.delta") > types.index(
        "assistant.started", types.index("assistant.started") + 1
    )
    assert events[-1]["data"]["model"] == backup.model and events[-1]["data"]["message"] == "t0 t1 t2 t3 "
    record = TurnAnalysis.objects.get(turn_id=accepted["turn_id"])
    assert record.attempts and {a["code"] for a in record.attempts} == {reason}
    assert record.profile.startswith(f"dialogue:{backup.model}")


def test_a_transient_failure_is_retried_without_falling_back(live_system, tenant_key, profiles) -> None:
    primary = profiles("dialogue", "fail_first=1,status=429,retry_after=1")
    profiles("dialogue", priority=1)
    accepted, events = turn(live_system, tenant_key.key, "[[tokens=2]]")
    assert len(started(events)) == 1 and events[-1]["data"]["model"] == primary.model
    attempts = TurnAnalysis.objects.get(turn_id=accepted["turn_id"]).attempts
    assert [(a["code"], a["retry_in"] >= 1) for a in attempts] == [("llm_rate_limited", True)]


def test_when_every_provider_fails_the_turn_ends_with_one_error(live_system, tenant_key, profiles) -> None:
    profiles("dialogue", "status=503")
    profiles("dialogue", "status=500", priority=1)
    _, events = turn(live_system, tenant_key.key, "[[tokens=4]]")
    assert [e["type"] for e in events if e["type"] in TERMINAL] == ["assistant.error"]
    assert "assistant.delta" not in [e["type"] for e in events]
    assert len(started(events)) == 2
    error = events[-1]["data"]
    assert error["code"] == "llm_unavailable" and error["retryable"] is True and "partial" not in error


def test_a_stream_that_breaks_after_text_ends_with_a_partial_error(live_system, tenant_key, profiles) -> None:
    profiles("dialogue")
    profiles("dialogue", priority=1)
    _, events = turn(live_system, tenant_key.key, "[[tokens=10]] [[break_after=3]]")
    assert len(started(events)) == 1, "must not restart silently on another model"
    error = events[-1]["data"]
    assert events[-1]["type"] == "assistant.error"
    assert error["code"] == "llm_stream_interrupted" and error["retryable"] is True
    assert error["partial"] == "t0 t1 t2 "
    text = "".join(e["data"]["text"] for e in events if e["type"] == "assistant.delta")
    assert text == "t0 t1 t2 "


def test_after_a_fallback_tool_rounds_start_at_the_model_that_answered(
    live_system, tenant_key, profiles, llm_stub
) -> None:
    primary = profiles("dialogue", "status=503")
    backup = profiles("dialogue", priority=1)
    marker = uuid.uuid4().hex
    _, events = turn(live_system, tenant_key.key, f"time? {marker} [[tool=current_time:{{}}]]")
    types = [e["type"] for e in events]
    assert types[-1] == "assistant.final" and "tool.result" in types
    assert len(started(events)) == 1 + 1, "one start, one fallback; the second round did not fall back again"
    log = httpx.get(f"{llm_stub.url}/_log").json()

    def rounds(profile: ModelProfile) -> int:
        path = profile.base_url[len(llm_stub.url) :]
        return sum(
            1 for e in log if e["path"].startswith(path) and marker in json.dumps(e["body"]["messages"])
        )

    assert rounds(primary) == 3, "the first round: one call and two retries"
    assert rounds(backup) == 2, "both rounds on the backup"
