"""When a turn goes to the ``escalation`` model profile, and why.

The client can ask (``metadata.escalate: true``) or refuse (``false``); otherwise
rules over the local analysis decide. The thresholds live in the ``escalation``
UI setting (admin → UI settings), with the defaults below when it is absent:

``enabled``                 rules on at all (an explicit request always counts)
``complexity_threshold``    escalate when analysis complexity ≥ this (0 to 1)
``long_message_chars``      a message this long …
``technical_tags``          … that carries one of these tags is a "long technical request"
``risk_tags``               escalate whenever one of these tags is present
``intents``                 escalate every message with one of these intents
``frustrated_problems``     escalate a problem report written with negative sentiment
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conversations.turn.analysis import TAGS, Analysis
from somaagent.ui_setting_schemas import register_ui_setting, ui_setting_get

SETTING_KEY = "escalation"
INTENTS = ("question", "action_request", "problem_report", "statement")

DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "complexity_threshold": 0.7,
    "long_message_chars": 1500,
    "technical_tags": ["code", "data", "infrastructure", "security", "math"],
    "risk_tags": ["security", "legal"],
    "intents": [],
    "frustrated_problems": True,
}


def _validate(doc: dict[str, Any]) -> list[str]:
    problems = []
    if not isinstance(doc["enabled"], bool):
        problems.append("enabled must be true or false")
    threshold = doc["complexity_threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
        problems.append("complexity_threshold must be a number from 0 to 1")
    chars = doc["long_message_chars"]
    if isinstance(chars, bool) or not isinstance(chars, int) or chars < 1:
        problems.append("long_message_chars must be a positive integer")
    for name in ("technical_tags", "risk_tags"):
        value = doc[name]
        if not isinstance(value, list) or any(t not in TAGS for t in value):
            problems.append(f"{name} must be a list of tags from: {', '.join(sorted(TAGS))}")
    if not isinstance(doc["intents"], list) or any(i not in INTENTS for i in doc["intents"]):
        problems.append(f"intents must be a list of: {', '.join(INTENTS)}")
    if not isinstance(doc["frustrated_problems"], bool):
        problems.append("frustrated_problems must be true or false")
    return problems


def escalation_setting_register() -> None:
    """From ``ConversationsConfig.ready()``: the escalation UI setting staff edit in admin."""
    register_ui_setting(
        SETTING_KEY,
        defaults=DEFAULTS,
        validate=_validate,
        help="Escalation thresholds (conversations/turn/escalation.py); absent fields take the defaults.",
    )


@dataclass(frozen=True)
class EscalationDecision:
    """``escalate`` and the machine-readable ``reason`` plus a sentence for people."""

    escalate: bool
    reason: str
    detail: str


NO_ESCALATION = EscalationDecision(escalate=False, reason="", detail="")


def _flag(value: Any) -> bool | None:
    """``metadata.escalate``: true/false (also "true"/"false" from string-only clients), else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no"):
        return False
    return None


def escalation_decide(
    *, analysis: Analysis, metadata: dict[str, Any] | None, rules: dict[str, Any]
) -> EscalationDecision:
    """Apply the rules in order; the first that matches is the reason."""
    requested = _flag((metadata or {}).get("escalate"))
    if requested is True:
        return EscalationDecision(True, "requested", "the client asked for escalation (metadata.escalate)")
    if requested is False or not rules["enabled"]:
        return NO_ESCALATION
    tags = set(analysis.tags)
    risky = sorted(tags & set(rules["risk_tags"]))
    if risky:
        return EscalationDecision(True, "risk_tag", f"the message is about {', '.join(risky)}")
    if analysis.intent in rules["intents"]:
        return EscalationDecision(True, "intent", f"intent {analysis.intent} is set to escalate")
    if (
        rules["frustrated_problems"]
        and analysis.intent == "problem_report"
        and analysis.sentiment == "negative"
    ):
        return EscalationDecision(True, "frustrated_problem", "a problem report with negative sentiment")
    if analysis.complexity >= rules["complexity_threshold"]:
        return EscalationDecision(
            True,
            "complexity",
            f"complexity {analysis.complexity:.2f} ≥ {rules['complexity_threshold']}",
        )
    technical = sorted(tags & set(rules["technical_tags"]))
    if analysis.chars >= rules["long_message_chars"] and technical:
        return EscalationDecision(
            True,
            "long_technical",
            f"{analysis.chars} characters (≥ {rules['long_message_chars']}) about {', '.join(technical)}",
        )
    return NO_ESCALATION


def escalation_rules() -> dict[str, Any]:
    return ui_setting_get(SETTING_KEY)
