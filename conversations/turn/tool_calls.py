"""The turn's side of a round of tool calls: decide each call, record it, dispatch the runnable ones.

Each call the model asks for becomes a ``ToolRun``. Calls that cannot run
(bad JSON, unknown tool, not enabled, over the per-turn limit, arguments that
do not fit the schema, breaker open, policy denial) are finished at once with
status ``error`` or ``blocked``; the others are dispatched to the ``tools``
queue through the outbox, in the same transaction that records them and
writes their ``tool.start`` events, so a broker outage delays them (the
outbox sweep publishes them) rather than losing them. A call the policy lets
run only once a person approves it is recorded too but not dispatched
(``PlannedCall.approval``; conversations/turn/approvals.py parks the turn).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from conversations.llm.port import ToolCallDelta
from conversations.models import EventType, ToolApproval
from conversations.turn.claim import turn_emit
from conversations.turn.types import ClaimedTurn
from somaagent.errors import PolicyDenied, ValidationFailed
from somaagent.json_input import json_loads, text_scrubbed
from somaagent.outbox import outbox_enqueue
from somaagent.policy import policy_check
from tools.breaker import breaker_open_for
from tools.execute import TOOL_TOPIC
from tools.models import ToolRun
from tools.registry import args_error
from tools.selectors import EffectiveTool


@dataclass
class ToolCall:
    """One complete call assembled from the streamed deltas."""

    call_id: str
    name: str
    arguments: str


def assemble_calls(deltas: list[ToolCallDelta]) -> list[ToolCall]:
    by_index: dict[int, ToolCall] = {}
    for delta in deltas:
        call = by_index.setdefault(delta.index, ToolCall(call_id="", name="", arguments=""))
        if delta.id:
            call.call_id = delta.id
        if delta.name and delta.name != call.name:
            call.name += delta.name  # some servers stream the name in pieces, some repeat it
        call.arguments += delta.arguments
    calls = [by_index[i] for i in sorted(by_index)]
    for call in calls:
        call.call_id = call.call_id or f"call_{uuid.uuid4().hex[:24]}"
    return calls


@dataclass
class PlannedCall:
    call: ToolCall
    args: dict[str, Any]
    timeout: float
    decided: tuple[str, dict[str, Any]] | None = None  # (status, result) when it will not run
    run: ToolRun | None = field(default=None)
    approval: str | None = None  # why a person must approve it first (it runs after their answer)


def _decided(status: str, code: str, message: str) -> tuple[str, dict[str, Any]]:
    return status, {"error": code, "message": message}


def plan_calls(
    *, claim: ClaimedTurn, calls: list[ToolCall], tools: dict[str, EffectiveTool], used: int
) -> list[PlannedCall]:
    """Decide what happens to each call; ``used`` counts the calls earlier rounds of the turn made."""
    limit = settings.SOMA.tools.max_calls_per_turn
    planned = []
    for call in calls:
        effective = tools.get(call.name)
        timeout = effective.timeout if effective else settings.SOMA.tools.default_timeout_seconds
        plan = PlannedCall(call=call, args={}, timeout=timeout)
        planned.append(plan)
        used += 1
        try:
            parsed = json_loads(call.arguments, what="arguments") if call.arguments.strip() else {}
        except ValidationFailed as exc:  # not JSON, too deep, or text the database cannot store
            plan.args = {"_raw": text_scrubbed(call.arguments[:2000])}
            plan.decided = _decided("error", "invalid_arguments", exc.message)
            continue
        plan.args = parsed if isinstance(parsed, dict) else {"_raw": parsed}
        if effective is None:
            known = ", ".join(sorted(n for n, e in tools.items() if e.usable)) or "none"
            plan.decided = _decided(
                "error", "unknown_tool", f"There is no tool {call.name!r}. Tools: {known}."
            )
        elif effective.unavailable:
            plan.decided = _decided(
                "blocked", "tool_unavailable", f"{call.name} is not available here: {effective.unavailable}."
            )
        elif not effective.enabled:
            plan.decided = _decided(
                "blocked", "tool_not_enabled", f"{call.name} is not enabled for this agent."
            )
        elif used > limit:
            plan.decided = _decided(
                "blocked", "tool_call_limit", f"The limit of {limit} tool calls per reply is reached."
            )
        elif (problem := args_error(effective.tool, parsed)) is not None:
            plan.decided = _decided(
                "error", "invalid_arguments", f"Invalid arguments for {call.name}: {problem}"
            )
        elif (wait := breaker_open_for(tool=call.name, tenant_id=claim.tenant_id)) is not None:
            plan.decided = _decided(
                "blocked",
                "circuit_open",
                f"{call.name} failed too often and is paused; try again in {wait} s.",
            )
        else:
            _authorize(claim, plan)
    return planned


def _authorize(claim: ClaimedTurn, plan: PlannedCall) -> None:
    """Ask the policy: the call runs, is refused (``decided``), or waits for approval (``approval``)."""
    try:
        decision = tool_policy_check(
            tenant_id=claim.tenant_id,
            persona_id=claim.persona_id,
            session_id=claim.session_id,
            turn_id=claim.turn_id,
            tool=plan.call.name,
            args=plan.args,
        )
    except PolicyDenied as exc:
        plan.decided = _decided("blocked", exc.code, exc.message)
        return
    if decision.needs_approval and not always_allowed(session_id=claim.session_id, tool=plan.call.name):
        plan.approval = "; ".join(decision.approval)


def tool_policy_check(
    *, tenant_id: Any, persona_id: Any, session_id: Any, turn_id: Any, tool: str, args: dict[str, Any]
) -> Any:
    """The policy's decision on one call (``needs_approval``); PolicyDenied when it refuses."""
    return policy_check(
        tenant=str(tenant_id),
        persona_id=str(persona_id) if persona_id else None,
        action="tool.execute",
        resource=tool,
        context={"session_id": str(session_id), "turn_id": str(turn_id), "args": args},
    )


def always_allowed(*, session_id: Any, tool: str) -> bool:
    """Someone answered "always allow this tool in this chat" for an earlier call."""
    return ToolApproval.objects.filter(
        session_id=session_id, tool=tool, always=True, status=ToolApproval.Status.APPROVED
    ).exists()


def runs_start(*, claim: ClaimedTurn, round: int, planned: list[PlannedCall]) -> list[ToolRun]:
    """Record the round's runs, emit their ``tool.start`` (and at once ``tool.result`` for decided ones),
    and dispatch the runnable ones after commit."""
    now = timezone.now()
    grace = timedelta(seconds=settings.SOMA.tools.queue_grace_seconds)
    # A run that waits for approval may wait this long first (its deadline is set again on approval).
    wait = timedelta(seconds=settings.SOMA.tools.approval_timeout_seconds)
    runs = []
    with transaction.atomic():
        for position, plan in enumerate(planned):
            status, result = plan.decided or (ToolRun.Status.PENDING, {})
            run = ToolRun.objects.create(
                tenant_id=claim.tenant_id,
                session_id=claim.session_id,
                turn_id=claim.turn_id,
                attempt=claim.attempt,
                round=round,
                position=position,
                call_id=plan.call.call_id[:200],
                tool=plan.call.name[:64],
                args=plan.args,
                status=status,
                result=result,
                timeout_seconds=plan.timeout,
                deadline_at=now
                + timedelta(seconds=plan.timeout)
                + grace
                + (wait if plan.approval else timedelta()),
                duration_ms=0 if plan.decided else None,
                finished_at=now if plan.decided else None,
            )
            plan.run = run
            runs.append(run)
            turn_emit(
                claim=claim,
                type=EventType.TOOL_START,
                data={"request_id": str(run.pk), "tool_name": run.tool, "args": run.args},
            )
            if plan.decided:
                turn_emit(claim=claim, type=EventType.TOOL_RESULT, data=result_event_data(run))
            elif plan.approval is None:
                outbox_enqueue(
                    topic=TOOL_TOPIC, payload={"request_id": str(run.pk)}, dedupe_key=f"toolrun:{run.pk}"
                )
    return runs


def result_event_data(run: ToolRun) -> dict[str, Any]:
    return {
        "request_id": str(run.pk),
        "tool_name": run.tool,
        "status": run.status,
        "result": run.result,
        "duration_ms": run.duration_ms,
    }
