"""Hooks into other packages that need no edit of their code (turn outcomes)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from somaagent.metrics import registry as m
from somaagent.metrics.record import budget_rejected

_OUTCOME = {"assistant.final": "final", "assistant.error": "error", "assistant.cancelled": "cancelled"}


def _turn_finished(*, turn: Any, event_type: str, data: dict[str, Any]) -> None:
    outcome = _OUTCOME.get(str(event_type), str(event_type))
    code = str(data.get("code", "")) if outcome == "error" else ""
    tenant_id = turn.tenant_id

    def record() -> None:
        m.TURNS_FINISHED.labels(outcome, code).inc()
        if code == "budget_exceeded":
            budget_rejected(tenant=tenant_id, stage="turn")

    transaction.on_commit(record)


def install() -> None:
    from conversations.services.turns import FINISH_HOOKS

    if _turn_finished not in FINISH_HOOKS:
        FINISH_HOOKS.append(_turn_finished)
