"""Escalation rules: a table of analyses and metadata against the thresholds, and their UI setting."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.turn.analysis import Analysis, analyse
from conversations.turn.escalation import DEFAULTS, SETTING_KEY, escalation_decide, escalation_rules
from somaagent.models import UISetting
from somaagent.ui_setting_schemas import ui_setting_problems


def a(
    intent: str = "question",
    sentiment: str = "neutral",
    tags: tuple[str, ...] = (),
    complexity: float = 0.1,
    chars: int = 40,
) -> Analysis:
    return Analysis(intent=intent, sentiment=sentiment, tags=list(tags), complexity=complexity, chars=chars)


RULES = dict(DEFAULTS)


@pytest.mark.parametrize(
    ("analysis", "metadata", "rules", "escalate", "reason"),
    [
        # the client decides first
        (a(), {"escalate": True}, RULES, True, "requested"),
        (a(), {"escalate": "true"}, RULES, True, "requested"),
        (a(complexity=0.99), {"escalate": False}, RULES, False, ""),
        (a(complexity=0.99), {"escalate": "false"}, RULES, False, ""),
        (a(), {"escalate": True}, {**RULES, "enabled": False}, True, "requested"),
        # nothing special
        (a(), {}, RULES, False, ""),
        (a(), None, RULES, False, ""),
        # risk tags
        (a(tags=("security",)), {}, RULES, True, "risk_tag"),
        (a(tags=("legal", "billing")), {}, RULES, True, "risk_tag"),
        (a(tags=("security",)), {}, {**RULES, "risk_tags": []}, False, ""),
        # intents configured to escalate
        (a(intent="problem_report"), {}, {**RULES, "intents": ["problem_report"]}, True, "intent"),
        (a(intent="question"), {}, {**RULES, "intents": ["problem_report"]}, False, ""),
        # frustrated problem reports
        (a(intent="problem_report", sentiment="negative"), {}, RULES, True, "frustrated_problem"),
        (a(intent="problem_report", sentiment="neutral"), {}, RULES, False, ""),
        (
            a(intent="problem_report", sentiment="negative"),
            {},
            {**RULES, "frustrated_problems": False},
            False,
            "",
        ),
        # complexity at and around the threshold
        (a(complexity=0.7), {}, RULES, True, "complexity"),
        (a(complexity=0.69), {}, RULES, False, ""),
        (a(complexity=0.5), {}, {**RULES, "complexity_threshold": 0.5}, True, "complexity"),
        # long technical requests: long AND technical
        (a(tags=("code",), chars=1500), {}, RULES, True, "long_technical"),
        (a(tags=("code",), chars=1499), {}, RULES, False, ""),
        (a(tags=("billing",), chars=5000), {}, RULES, False, ""),
        (a(tags=("data",), chars=300), {}, {**RULES, "long_message_chars": 300}, True, "long_technical"),
        # rules off: only an explicit request escalates
        (a(tags=("security",), complexity=0.9), {}, {**RULES, "enabled": False}, False, ""),
    ],
)
def test_rule_table(
    analysis: Analysis, metadata: dict[str, Any] | None, rules: dict[str, Any], escalate: bool, reason: str
) -> None:
    decision = escalation_decide(analysis=analysis, metadata=metadata, rules=rules)
    assert (decision.escalate, decision.reason) == (escalate, reason)
    assert bool(decision.detail) == escalate


def test_real_messages_through_the_analyser() -> None:
    def decide(text: str) -> str:
        return escalation_decide(analysis=analyse(text), metadata={}, rules=RULES).reason

    assert decide("What time is it in Tokyo?") == ""
    assert decide("Someone reported a vulnerability in our login form") == "risk_tag"
    assert decide("The app crashes constantly, this is ridiculous and useless") == "frustrated_problem"
    long_code = (
        "Please review this Python code for performance. " + "def f(x): return x  # loop over rows\n" * 60
    )
    assert decide(long_code) in ("complexity", "long_technical")


@pytest.mark.django_db
def test_thresholds_come_from_the_ui_setting_with_defaults_for_absent_fields() -> None:
    assert escalation_rules() == DEFAULTS
    UISetting.objects.create(key=SETTING_KEY, document={"complexity_threshold": 0.2})
    rules = escalation_rules()
    assert rules["complexity_threshold"] == 0.2
    assert rules["risk_tags"] == DEFAULTS["risk_tags"]
    assert escalation_decide(analysis=a(complexity=0.25), metadata={}, rules=rules).reason == "complexity"


@pytest.mark.django_db
def test_an_invalid_stored_setting_falls_back_to_the_defaults() -> None:
    UISetting.objects.create(key=SETTING_KEY, document={"complexity_threshold": "high"})
    assert escalation_rules() == DEFAULTS


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"complexity_threshold": 1.5}, "complexity_threshold"),
        ({"complexity_threshold": True}, "complexity_threshold"),
        ({"long_message_chars": 0}, "long_message_chars"),
        ({"risk_tags": ["nonsense"]}, "risk_tags"),
        ({"intents": ["chitchat"]}, "intents"),
        ({"enabled": "yes"}, "enabled"),
        ({"threshold": 0.5}, "unknown field 'threshold'"),
        (["not", "an", "object"], "JSON object"),
    ],
)
def test_invalid_documents_are_named(document: Any, problem: str) -> None:
    problems = ui_setting_problems(SETTING_KEY, document)
    assert problems and any(problem in p for p in problems)


def test_a_valid_document_has_no_problems() -> None:
    assert (
        ui_setting_problems(SETTING_KEY, {"complexity_threshold": 0.5, "intents": ["problem_report"]}) == []
    )


@pytest.mark.django_db
def test_admin_refuses_an_invalid_escalation_setting(admin_client) -> None:
    response = admin_client.post(
        "/admin/somaagent/uisetting/add/",
        {"key": SETTING_KEY, "document": '{"complexity_threshold": 7}'},
    )
    assert response.status_code == 200
    assert b"complexity_threshold must be a number from 0 to 1" in response.content
    assert not UISetting.objects.filter(key=SETTING_KEY).exists()
    response = admin_client.post(
        "/admin/somaagent/uisetting/add/",
        {"key": SETTING_KEY, "document": '{"complexity_threshold": 0.4}'},
    )
    assert response.status_code == 302
    assert UISetting.objects.get(key=SETTING_KEY).document == {"complexity_threshold": 0.4}
