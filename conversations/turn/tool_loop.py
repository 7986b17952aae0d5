"""The tool loop of a turn: stream, run the tools the model asks for, send results back, repeat.

The conversation task never blocks on a Celery result. It records and
dispatches the round's tool runs, then waits for their rows to finish: it
blocks on a Redis list the tool tasks push to (a wake-up only) and reads the
rows from the database, so a lost wake-up costs at most one poll interval.
While it waits, the process's turn watcher keeps renewing the turn's lease
and watching for cancellation, and the turn holds no database connection. A run still open at its
deadline is marked ``timeout`` by the turn itself; the model always gets one
result per call. A round with a call that needs a person's approval parks the
turn instead of waiting (conversations/turn/approvals.py); the turn goes on
from there, on any worker, once every such call is answered.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Protocol

import redis
from django.conf import settings
from django.utils import timezone

from conversations.llm.port import LlmError, ModelTarget, ToolCallDelta
from conversations.models import EventType
from conversations.services.summary import SummaryDue
from conversations.turn.approvals import AWAITING_APPROVAL, Parked, resumed_round, turn_park
from conversations.turn.claim import turn_emit
from conversations.turn.tool_calls import (
    PlannedCall,
    assemble_calls,
    plan_calls,
    result_event_data,
    runs_start,
)
from conversations.turn.types import ClaimedTurn
from conversations.turn.watch import Watched
from somaagent.db_hold import db_release
from somaagent.redis_client import sync_redis
from tools.breaker import breaker_record
from tools.execute import wake_key
from tools.models import ToolRun
from tools.selectors import offered_specs, tools_for

log = logging.getLogger(__name__)
WAIT_SLICE_SECONDS = 0.5


class Round(Protocol):
    """What one streamed model call returns (the runner's ``Generation``)."""

    text: list[str]
    usage: dict[str, int] | None
    error: LlmError | None
    stop_reason: str | None
    tool_calls: list[ToolCallDelta]
    deltas_sent: int

    @property
    def message(self) -> str: ...


StreamFn = Callable[..., Round]


def generate_with_tools(
    *,
    claim: ClaimedTurn,
    target: ModelTarget,
    messages: list[dict[str, Any]],
    stream: StreamFn,
    watched: Watched,
    admit_round: Callable[[list[dict[str, Any]]], dict[str, Any] | None] | None = None,
    resume: tuple[Parked, Round] | None = None,
    prompt_facts: tuple[list[Any], SummaryDue | None, list[Any]] = ([], None, []),
) -> Round:
    """Run model rounds until the model answers without tool calls; returns the merged result.

    ``admit_round(messages)`` runs before every round after the first (its budget
    reservation): the ``assistant.error`` data that ends the turn instead, or None.
    ``resume``: go on from a parked round (its state, and the reply so far). Stop reason
    ``AWAITING_APPROVAL``: the turn is parked; ``prompt_facts`` (the prompt's memory references,
    whether its history was full, the documents it cites) are kept with it for the reply's end.
    """
    tools = tools_for(tenant_id=claim.tenant_id, persona_id=claim.persona_id)
    specs = offered_specs(tools) or None
    limit = settings.SOMA.tools.max_calls_per_turn
    messages = list(messages)
    used = 0
    number = 0
    total: Round | None = None
    if resume is not None:
        parked, total = resume
        planned = resumed_round(parked)
        stop = wait_for_runs(claim=claim, planned=planned, watched=watched)
        if stop is not None:
            total.stop_reason = stop
            return total
        messages = [*parked.messages, *_round_messages(parked.round_text, planned)]
        used, number = parked.used, parked.round
    while True:
        number += 1
        at_limit = used >= limit
        refusal = admit_round(messages) if admit_round is not None and total is not None else None
        if refusal is not None and total is not None:
            total.error = LlmError(
                str(refusal["code"]),
                str(refusal["message"]),
                retryable=bool(refusal.get("retryable")),
                retry_after=refusal.get("retry_after"),
            )
            return total
        current = stream(
            claim,
            target,
            messages,
            tools=specs,
            tool_choice="none" if at_limit and specs else None,
            first_index=total.deltas_sent if total else 0,
        )
        total = current if total is None else _merge(total, current)
        if current.stop_reason or current.error or not current.tool_calls:
            return total
        calls = assemble_calls(current.tool_calls)
        if at_limit:
            total.error = LlmError(
                "tool_call_limit",
                f"The model kept calling tools after the limit of {limit} calls per reply.",
                retryable=False,
            )
            return total
        planned = plan_calls(claim=claim, calls=calls, tools=tools, used=used)
        used += len(calls)
        if any(p.approval is not None for p in planned):
            parked = Parked(
                messages=messages,
                text=total.text,
                usage=total.usage,
                deltas_sent=total.deltas_sent,
                used=used,
                round=number,
                round_text=current.message,
                memory=prompt_facts[0],
                summary_due=asdict(prompt_facts[1]) if prompt_facts[1] else None,
                citations=prompt_facts[2],
            )
            turn_park(claim=claim, round=number, planned=planned, parked=parked)
            total.stop_reason = AWAITING_APPROVAL
            return total
        runs_start(claim=claim, round=number, planned=planned)
        stop = wait_for_runs(claim=claim, planned=planned, watched=watched)
        if stop is not None:
            total.stop_reason = stop
            return total
        messages += _round_messages(current.message, planned)


def _merge(total: Round, current: Round) -> Round:
    total.text.extend(current.text)
    if current.usage:
        base = total.usage or {"prompt_tokens": 0, "completion_tokens": 0}
        total.usage = {
            k: base.get(k, 0) + current.usage.get(k, 0) for k in ("prompt_tokens", "completion_tokens")
        }
    total.error = current.error
    total.stop_reason = current.stop_reason
    total.tool_calls = current.tool_calls
    total.deltas_sent += current.deltas_sent
    return total


def _round_messages(text: str, planned: list[PlannedCall]) -> list[dict[str, Any]]:
    """The assistant's tool calls and one ``tool`` message per call, in OpenAI's format (a call
    whose arguments a person edited before approving it says which ones it ran with)."""
    assistant: dict[str, Any] = {
        "role": "assistant",
        "content": text or None,
        "tool_calls": [
            {
                "id": p.call.call_id,
                "type": "function",
                "function": {"name": p.call.name, "arguments": p.call.arguments},
            }
            for p in planned
        ],
    }
    out = [assistant]
    limit = settings.SOMA.tools.result_max_chars
    for plan in planned:
        assert plan.run is not None
        run = plan.run
        outcome: dict[str, Any] = {"status": run.status, "result": run.result}
        if run.args != plan.args:
            outcome["arguments_used"] = run.args
        content = json.dumps(outcome, ensure_ascii=False, default=str)
        if len(content) > limit:
            content = content[:limit] + f"… [truncated, {len(content)} characters in all]"
        out.append({"role": "tool", "tool_call_id": plan.call.call_id, "content": content})
    return out


def wait_for_runs(*, claim: ClaimedTurn, planned: list[PlannedCall], watched: Watched) -> str | None:
    """Wait until every dispatched run of the round is final, emitting each ``tool.result`` as it lands.

    Returns the reason the turn must stop instead (cancelled, lease lost, timed out), if any. The
    process's turn watcher keeps the lease while the turn waits; between polls the turn holds no
    database connection.
    """
    waiting = {p.run.pk: p for p in planned if p.run is not None and p.decided is None}
    if not waiting:
        return None
    stopped = threading.Event()
    forget = watched.on_stop(stopped.set)
    try:
        while waiting:
            if watched.stop_reason:
                return watched.stop_reason
            for run in ToolRun.objects.filter(pk__in=list(waiting)).exclude(status__in=ToolRun.OPEN_STATUSES):
                plan = waiting.pop(run.pk)
                plan.run = run
                turn_emit(claim=claim, type=EventType.TOOL_RESULT, data=result_event_data(run))
            if not waiting:
                break
            _expire_overdue(claim, waiting)
            db_release()
            _sleep_until_woken(claim, stopped)
        return watched.stop_reason
    finally:
        forget()


def _expire_overdue(claim: ClaimedTurn, waiting: dict[Any, PlannedCall]) -> None:
    now = timezone.now()
    for request_id, plan in waiting.items():
        run = plan.run
        assert run is not None
        if run.deadline_at > now:
            continue
        expired = ToolRun.objects.filter(pk=request_id, status__in=ToolRun.OPEN_STATUSES).update(
            status=ToolRun.Status.TIMEOUT,
            result={
                "error": "timeout",
                "message": f"{run.tool} did not finish within {run.timeout_seconds:g} s "
                "(or its worker was lost).",
            },
            finished_at=now,
            duration_ms=int((now - run.created_at).total_seconds() * 1000),
        )
        if expired:
            log.warning("tool run timed out waiting", extra={"request_id": str(request_id), "tool": run.tool})
            breaker_record(tool=run.tool, tenant_id=claim.tenant_id, ok=False)


def _sleep_until_woken(claim: ClaimedTurn, stopped: threading.Event) -> None:
    if stopped.is_set():
        return
    try:
        sync_redis().blpop([wake_key(claim.turn_id)], timeout=WAIT_SLICE_SECONDS)
    except redis.RedisError:
        stopped.wait(WAIT_SLICE_SECONDS)  # Redis is down: the database poll carries on alone
