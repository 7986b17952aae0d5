"""Answering a tool call that waits for approval: approve (maybe with edited arguments), deny, expire.

Every answer is applied once, under the turn's row lock: the approval row goes
from ``pending`` to its outcome, the tool run is dispatched (approved) or ended
``blocked`` (denied, expired; the model gets that as the tool's result), a
``tool.approval_decided`` event goes to the stream and the audit log gets an
entry, all in one transaction. The answer that leaves none of the turn's
approvals pending un-parks the turn and dispatches it (conversations/turn/approvals.py).

The same answer again returns the recorded decision (HTTP 200); a different
one, or any answer after the approval expired or its turn ended, is refused
with 409 ``approval_decided``. Only someone who sees the session may answer
(others get 404); someone else than the user who started it (a tenant admin,
staff) only when ``SOMA_APPROVAL_BY_STAFF`` is on (403 otherwise).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from conversations.models import EventType, Session, ToolApproval, Turn
from conversations.services.events import event_append
from conversations.turn.dispatch import turn_dispatch
from conversations.turn.finish import turn_attach
from conversations.turn.tool_calls import tool_policy_check
from somaagent.audit import Actor, audit_record
from somaagent.errors import Conflict, Forbidden, NotFound, PolicyDenied, ValidationFailed
from somaagent.identity.principal import Principal
from somaagent.models import AuditLog
from somaagent.outbox import outbox_enqueue
from tools.execute import TOOL_TOPIC
from tools.models import ToolRun
from tools.registry import args_error
from tools.selectors import tools_for

log = logging.getLogger(__name__)

APPROVE, DENY = "approve", "deny"
OUTCOME = {APPROVE: ToolApproval.Status.APPROVED, DENY: ToolApproval.Status.DENIED}


@dataclass(frozen=True)
class Answer:
    decision: str  # "approve" | "deny"
    arguments: dict[str, Any] | None = None  # edited arguments (approve only)
    always: bool = False  # always allow this tool in this chat (approve only)


def approval_answer(*, principal: Principal, session: Session, call_id: str, answer: Answer) -> ToolApproval:
    """Apply ``answer`` to the session's approval ``call_id`` once; the approval as it now stands."""
    if not _may_answer(principal, session):
        raise Forbidden(
            "Only the user who started this chat may answer its approvals.", code="approval_not_yours"
        )
    actor = Actor(label=principal.label, user_id=getattr(principal.user, "pk", None))
    with transaction.atomic():
        approval = (
            ToolApproval.objects.select_for_update(of=("self",))
            .filter(session=session, call_id=call_id)
            .select_related("run")
            .order_by("-created_at")
            .first()
        )
        if approval is None:
            raise NotFound("No tool call waits for approval under this id.")
        turn = _lock_turn(approval)
        if approval.status != ToolApproval.Status.PENDING:
            if _same(approval, answer):
                return approval  # sent twice: applied once, the same result
            raise Conflict(
                f"This tool call was already answered: {approval.status}.",
                code="approval_decided",
                details={"status": approval.status, "decided_by": approval.decided_by},
            )
        if turn.status not in Turn.ACTIVE_STATUSES or turn.cancel_requested:
            raise Conflict("The reply this tool call belongs to has ended.", code="approval_decided")
        if approval.expires_at <= timezone.now():  # the sweep is about to record it as expired
            raise Conflict("This approval expired; the call was denied.", code="approval_decided")
        args = _edited(approval, turn, answer) if answer.decision == APPROVE else None
        _decide(approval, turn, OUTCOME[answer.decision], actor=actor, args=args, always=answer.always)
    return approval


def approvals_expire(*, batch_size: int = 100) -> int:
    """End approvals nobody answered in time as denied (the turn sweep calls this)."""
    expired = 0
    now = timezone.now()
    with transaction.atomic():
        due = list(
            ToolApproval.objects.select_for_update(skip_locked=True)
            .filter(status=ToolApproval.Status.PENDING, expires_at__lte=now)
            .select_related("run")
            .order_by("expires_at")[:batch_size]
        )
        for approval in due:
            turn = _lock_turn(approval)
            _decide(approval, turn, ToolApproval.Status.EXPIRED, actor=Actor.system("approval_expiry"))
            expired += 1
    if expired:
        log.info("tool approvals expired", extra={"count": expired})
    return expired


def approvals_close(*, turn_ids: list[uuid.UUID]) -> int:
    """The turns were cancelled (or deleted): their approvals will never be answered."""
    return ToolApproval.objects.filter(turn_id__in=turn_ids, status=ToolApproval.Status.PENDING).update(
        status=ToolApproval.Status.CANCELLED, decided_at=timezone.now(), decided_by="cancel"
    )


def _may_answer(principal: Principal, session: Session) -> bool:
    if session.created_by_id is None:  # started through an API key: whoever sees it answers
        return True
    if principal.user is not None and principal.user.pk == session.created_by_id:
        return True
    return bool(settings.SOMA.tools.approval_by_staff)


def _lock_turn(approval: ToolApproval) -> Turn:
    return (
        Turn.objects.select_for_update(of=("self",))
        .select_related("user_event", "session", "tenant")
        .get(pk=approval.turn_id)
    )


def _same(approval: ToolApproval, answer: Answer) -> bool:
    if approval.status != OUTCOME.get(answer.decision):
        return False
    if answer.decision == DENY:
        return True
    return approval.always == answer.always and answer.arguments in (None, approval.edited_arguments)


def _edited(approval: ToolApproval, turn: Turn, answer: Answer) -> dict[str, Any] | None:
    """The edited arguments, checked as the model's would be (schema, policy); None if unchanged."""
    if answer.arguments is None or answer.arguments == approval.arguments:
        return None
    effective = tools_for(tenant_id=turn.tenant_id, persona_id=turn.session.persona_id).get(approval.tool)
    if effective is None:
        raise Conflict(f"The tool {approval.tool} is not available any more.", code="approval_decided")
    if not effective.tool.args_editable:
        raise ValidationFailed(
            f"The arguments of {approval.tool} cannot be edited.", code="args_not_editable"
        )
    problem = args_error(effective.tool, answer.arguments)
    if problem is not None:
        raise ValidationFailed(
            f"Invalid arguments for {approval.tool}: {problem}", details={"arguments": problem}
        )
    try:
        tool_policy_check(
            tenant_id=turn.tenant_id,
            persona_id=turn.session.persona_id,
            session_id=turn.session_id,
            turn_id=turn.pk,
            tool=approval.tool,
            args=answer.arguments,
        )
    except PolicyDenied as exc:
        raise PolicyDenied(f"The policy refuses these arguments: {exc.message}", details=exc.details) from exc
    return answer.arguments


def _decide(
    approval: ToolApproval,
    turn: Turn,
    status: str,
    *,
    actor: Actor,
    args: dict[str, Any] | None = None,
    always: bool = False,
) -> None:
    """Record the outcome, start or end the run, tell the stream and the audit log, and un-park the
    turn when nothing of it waits any more (inside the caller's transaction, turn row locked)."""
    now = timezone.now()
    approval.status = status
    approval.decided_at = now
    approval.decided_by = actor.label[:150]
    approval.edited_arguments = args
    approval.always = always and status == ToolApproval.Status.APPROVED
    approval.save(update_fields=["status", "decided_at", "decided_by", "edited_arguments", "always"])
    run = approval.run
    if status == ToolApproval.Status.APPROVED:
        run.args = args if args is not None else run.args
        grace = timedelta(seconds=settings.SOMA.tools.queue_grace_seconds)
        run.deadline_at = now + timedelta(seconds=run.timeout_seconds) + grace
        run.save(update_fields=["args", "deadline_at"])
        outbox_enqueue(topic=TOOL_TOPIC, payload={"request_id": str(run.pk)}, dedupe_key=f"toolrun:{run.pk}")
    else:
        code = "approval_denied" if status == ToolApproval.Status.DENIED else "approval_expired"
        message = (
            f"{actor.label} denied this call of {run.tool}; it did not run."
            if status == ToolApproval.Status.DENIED
            else f"Nobody approved this call of {run.tool} in time; it did not run."
        )
        ToolRun.objects.filter(pk=run.pk, status__in=ToolRun.OPEN_STATUSES).update(
            status=ToolRun.Status.BLOCKED,
            result={"error": code, "message": message},
            finished_at=now,
            duration_ms=0,
        )
    data = {
        "call_id": approval.call_id,
        "request_id": str(run.pk),
        "tool_name": approval.tool,
        "decision": status,
        "decided_by": approval.decided_by,
        "args": run.args if status == ToolApproval.Status.APPROVED else approval.arguments,
        "always": approval.always,
    }
    if turn.status in Turn.ACTIVE_STATUSES:
        event = event_append(
            session_id=turn.session_id,
            type=EventType.TOOL_APPROVAL_DECIDED,
            data=data,
            attach=turn_attach(turn),
        )
        turn.tip_event_id = event.event_id
        Turn.objects.filter(pk=turn.pk).update(tip_event_id=event.event_id)
    audit_record(
        actor=actor,
        action=AuditLog.Action.TOOL_APPROVAL_DECIDED,
        tenant=turn.tenant,
        target=f"tool_approval:{approval.pk}",
        details={
            **data,
            "session_id": str(turn.session_id),
            "turn_id": str(turn.pk),
            "edited": args is not None,
        },
    )
    _resume_if_answered(turn)


def _resume_if_answered(turn: Turn) -> None:
    if not turn.awaiting_approval or turn.status not in Turn.ACTIVE_STATUSES:
        return
    if ToolApproval.objects.filter(turn_id=turn.pk, status=ToolApproval.Status.PENDING).exists():
        return
    # The lease's grace: if the dispatched task is lost, the turn sweep dispatches it again.
    grace = timezone.now() + timedelta(seconds=settings.SOMA.turn_redispatch_after_seconds)
    Turn.objects.filter(pk=turn.pk).update(awaiting_approval=False, lease_expires_at=grace)
    turn.awaiting_approval = False
    turn_dispatch(turn=turn, reason="approved")
