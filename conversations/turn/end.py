"""What follows the end of a turn, called explicitly and in this order.

``turn_ended`` runs inside the transaction that writes the turn's terminal
event (``turn_finish``, or a turn ended before it ran: cancelled while queued,
out of attempts), with a ``TurnEnd`` that carries everything it needs, so
nothing here reads the turn again:

1. usage and budget: the turn's token usage is stored and, after commit, its
   budget reservation is settled with what was really used;
2. memory (a final answer only): the user message and the reply enter the
   memory write outbox, delivered after commit;
3. summary (a final answer in a long session only): a background summary run
   is queued when enough messages have left the prompt's history window;
   title (a final answer while the chat still has its first words as title):
   the model's proposal is queued;
4. the route's record (analysis, escalation, attempts) for the admin;
5. webhooks: the tenant's endpoints that want ``turn.finished``/``turn.failed``/
   ``turn.cancelled`` get a delivery, sent after commit;
6. a schedule's run (a turn a schedule sent): its outcome and the schedule's failure streak;
7. metrics, after commit.
"""

from __future__ import annotations

import logging

from conversations.models import EventType, TurnAnalysis
from conversations.schedules.outcomes import schedule_run_ended
from conversations.services.summary import summary_enqueue
from conversations.services.titles import title_proposal_enqueue
from conversations.turn.types import TurnEnd
from conversations.webhooks.emit import webhook_emit
from memory.services.writes import memory_remember_turn
from somaagent.budgets.services import turn_usage_record
from somaagent.metrics.record import turn_finished
from somaagent.sql import insert_objects

log = logging.getLogger(__name__)


def turn_ended(end: TurnEnd) -> None:
    data = end.data
    turn_usage_record(
        turn_id=end.turn_id,
        tenant_id=end.tenant_id,
        persona_id=end.persona_id,
        session_id=end.session_id,
        model=end.model or str(data.get("model") or ""),
        usage=end.usage,
        event_type=end.type,
        partial=str(data.get("partial") or ""),
    )
    if end.type == EventType.ASSISTANT_FINAL and end.claim is not None:
        memory_remember_turn(
            turn_id=end.turn_id,
            tenant_id=end.tenant_id,
            session_id=end.session_id,
            persona_id=end.persona_id,
            namespace=end.claim.memory_namespace,
            user_event_id=end.user_event_uuid,
            user_message=end.user_message,
            user_occurred_at=end.user_occurred_at,
            reply_event_id=end.event.event_id,
            reply=str(data.get("message", "")),
            reply_occurred_at=end.event.occurred_at,
        )
        _summary(end)
        # The model names the chat after its first reply.
        title_proposal_enqueue(session_id=end.session_id, title_automatic=end.title_automatic)
    if end.analysis is not None:
        _analysis_store(end)
    _webhooks(end)
    schedule_run_ended(end)
    turn_finished(
        tenant_id=end.tenant_id,
        event_type=end.type,
        code=str(data.get("code", "")) if end.type == EventType.ASSISTANT_ERROR else "",
    )


WEBHOOK_EVENTS = {
    EventType.ASSISTANT_FINAL: "turn.finished",
    EventType.ASSISTANT_ERROR: "turn.failed",
    EventType.ASSISTANT_CANCELLED: "turn.cancelled",
}


def _webhooks(end: TurnEnd) -> None:
    event = WEBHOOK_EVENTS.get(end.type)  # type: ignore[call-overload]
    if event is None:
        return
    data = end.data
    body: dict[str, object] = {
        "turn_id": str(end.turn_id),
        "session_id": str(end.session_id),
        "persona_id": str(end.persona_id) if end.persona_id else None,
        "user_event_id": str(end.user_event_uuid),
        "event_id": str(end.event.event_id),
        "model": end.model or data.get("model") or None,
        "usage": end.usage,
    }
    if end.type == EventType.ASSISTANT_FINAL:
        body["reply"] = str(data.get("message", ""))
    elif end.type == EventType.ASSISTANT_ERROR:
        body["error"] = {"code": data.get("code", ""), "message": data.get("message", "")}
    webhook_emit(tenant_id=end.tenant_id, event=event, subject=str(end.turn_id), data=body)


def _summary(end: TurnEnd) -> None:
    """Queue the summary run the prompt's walk found due: one outbox row, in the end's
    transaction like its other rows (the check itself read nothing here)."""
    if end.summary_due is not None:
        summary_enqueue(session_id=end.session_id, leaf=end.event.event_id, due=end.summary_due)


def _analysis_store(end: TurnEnd) -> None:
    """Store (or update, on a restarted turn) the turn's analysis and routing, in one upsert."""
    fields = dict(end.analysis or {})
    # The turn's row is locked by this transaction: it exists, so the insert cannot fail on it.
    insert_objects([TurnAnalysis(turn_id=end.turn_id, **fields)], update_on=(["turn"], list(fields)))
