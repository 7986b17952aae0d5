"""A turn that waits for a person's approval of a tool call: park it, and resume it later.

When the policy says a call needs approval (``PlannedCall.approval``), the turn
records the round's runs as usual (the runnable ones are dispatched and run
meanwhile), adds a ``ToolApproval`` row and a ``tool.approval_requested`` event
per waiting call (and an ``approval.requested`` webhook), and *parks*: in the same transaction its row gets
``awaiting_approval`` and a ``resume_state`` (the model's messages so far, the
reply's text, the round's calls), and its lease is dropped. The Celery task
then returns: no worker, thread or connection holds a waiting turn, and the
sweep leaves it alone (it has no lease to expire).

The last answer (conversations/services/approval_answer.py) clears
``awaiting_approval`` and dispatches the turn again. The claim that follows
takes ``resume_state`` (clearing it) instead of starting the reply over, and
the tool loop goes on from the parked round: it waits for the round's runs
(approved ones run now, denied ones are already final), gives every result to
the model and continues. If that worker dies, the turn restarts like any other
(``assistant.started`` with ``restart: true``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from conversations.models import EventType, ToolApproval, Turn
from conversations.services.summary import SummaryDue
from conversations.turn.claim import turn_emit
from conversations.turn.tool_calls import PlannedCall, ToolCall, runs_start
from conversations.turn.types import ClaimedTurn, LeaseLost
from conversations.webhooks.emit import webhook_emit
from tools.models import ToolRun
from tools.registry import get_tool

AWAITING_APPROVAL = "awaiting_approval"  # the tool loop's stop reason when it parked the turn


@dataclass
class Parked:
    """Everything the tool loop needs to go on from the round that waits (JSON in ``resume_state``)."""

    messages: list[dict[str, Any]]
    text: list[str]
    usage: dict[str, int] | None
    deltas_sent: int
    used: int  # tool calls the turn made so far
    round: int
    round_text: str  # what the model said in the parked round, before its calls
    calls: list[dict[str, Any]] = field(default_factory=list)  # call_id, name, arguments, request_id, open
    memory: list[Any] = field(default_factory=list)  # the prompt's memory references (assistant.final)
    summary_due: dict[str, int] | None = None  # the prompt's SummaryDue (conversations.services.summary)
    citations: list[Any] = field(default_factory=list)  # the documents the prompt cites (assistant.final)

    def summary_run(self) -> SummaryDue | None:
        return SummaryDue(**self.summary_due) if self.summary_due else None

    def as_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Parked:
        return cls(**{k: doc[k] for k in cls.__dataclass_fields__ if k in doc})


def approval_expiry() -> timedelta:
    return timedelta(seconds=settings.SOMA.tools.approval_timeout_seconds)


def turn_park(*, claim: ClaimedTurn, round: int, planned: list[PlannedCall], parked: Parked) -> None:
    """Record the round, ask for the approvals and park the turn, in one transaction; LeaseLost
    if this worker no longer runs the turn (then nothing of it is kept)."""
    now = timezone.now()
    expires = now + approval_expiry()
    with transaction.atomic():
        runs_start(claim=claim, round=round, planned=planned)
        for plan in planned:
            run = plan.run
            assert run is not None
            parked.calls.append(
                {
                    "call_id": plan.call.call_id,
                    "name": plan.call.name,
                    "arguments": plan.call.arguments,
                    "request_id": str(run.pk),
                    "open": plan.decided is None,  # its tool.result is still to come
                }
            )
            if plan.approval is None:
                continue
            approval = ToolApproval.objects.create(
                tenant_id=claim.tenant_id,
                session_id=claim.session_id,
                turn_id=claim.turn_id,
                run=run,
                call_id=run.call_id,
                tool=run.tool,
                arguments=run.args,
                reason=plan.approval[:500],
                expires_at=expires,
                created_at=now,
            )
            tool = get_tool(run.tool)
            asked = {
                "call_id": approval.call_id,
                "request_id": str(run.pk),
                "tool_name": run.tool,
                "args": run.args,
                "reason": approval.reason,
                "expires_at": expires.isoformat().replace("+00:00", "Z"),
                "args_editable": tool.args_editable if tool is not None else True,
            }
            turn_emit(claim=claim, type=EventType.TOOL_APPROVAL_REQUESTED, data=asked)
            # The tenant's webhooks hear of it in this transaction: a park that rolls back tells no one.
            webhook_emit(
                tenant_id=claim.tenant_id,
                event="approval.requested",
                subject=str(approval.pk),
                data={"session_id": str(claim.session_id), "turn_id": str(claim.turn_id), **asked},
            )
        owned = Turn.objects.filter(
            pk=claim.turn_id, status=Turn.Status.RUNNING, lease_owner=claim.owner
        ).update(awaiting_approval=True, lease_owner="", lease_expires_at=None, resume_state=parked.as_json())
        if not owned:
            raise LeaseLost(str(claim.turn_id))


def resumed_round(parked: Parked) -> list[PlannedCall]:
    """The parked round's calls with their runs as they are now (the tool loop waits for the open ones)."""
    found = ToolRun.objects.in_bulk([c["request_id"] for c in parked.calls])
    runs = {str(pk): run for pk, run in found.items()}
    planned = []
    for call in parked.calls:
        run = runs[call["request_id"]]
        plan = PlannedCall(
            call=ToolCall(call_id=call["call_id"], name=call["name"], arguments=call["arguments"]),
            args=_asked_args(call["arguments"], fallback=run.args),
            timeout=run.timeout_seconds,
            decided=None if call["open"] else (run.status, run.result),
            run=run,
        )
        planned.append(plan)
    return planned


def _asked_args(raw: str, *, fallback: dict[str, Any]) -> dict[str, Any]:
    try:
        parsed = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return fallback
    return parsed if isinstance(parsed, dict) else fallback
