"""A run's end: its outcome in the history, the failure streak that pauses a schedule, and
``schedule.run_finished`` for the tenant's webhooks (a turn's end, or a run refused at its start)."""

from __future__ import annotations

import logging

from django.db.models import Case, CharField, F, Value, When
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from conversations.models import EventType
from conversations.schedules.models import Schedule, ScheduleRun
from conversations.turn.types import TurnEnd
from conversations.webhooks.emit import webhook_emit
from somaagent.environment import env_int

log = logging.getLogger(__name__)

RUN_KEY = "schedule_run"  # in the run's user message metadata: which run the turn belongs to


def max_failures() -> int:
    return env_int("SOMA_SCHEDULE_MAX_FAILURES", 3)


def run_failed(schedule: Schedule, reason: str) -> None:
    """One more failure in a row; at the limit the schedule is paused and says why.

    Counted in the database (runs of one schedule can end side by side in two workers, each
    having read the schedule before the other wrote), and paused by the same statement that
    counts: the row lock orders the two, and the second sees the first's failure."""
    limit = max_failures()
    bumped = F("consecutive_failures") + 1
    Schedule.objects.filter(pk=schedule.pk).update(
        consecutive_failures=bumped,
        enabled=Case(When(consecutive_failures__gte=limit - 1, then=Value(False)), default=F("enabled")),
        paused_reason=Case(
            When(
                consecutive_failures__gte=limit - 1,
                then=Concat(
                    Value("Paused after "),
                    Cast(bumped, CharField()),
                    Value(" failed runs in a row; the last: "),
                    Value(reason[:200]),
                ),
            ),
            default=F("paused_reason"),
        ),
    )
    schedule.refresh_from_db(fields=["consecutive_failures", "enabled", "paused_reason"])
    if schedule.consecutive_failures >= limit:
        log.warning(
            "schedule paused",
            extra={"schedule_id": str(schedule.pk), "failures": schedule.consecutive_failures},
        )


OUTCOMES = {
    EventType.ASSISTANT_FINAL: ScheduleRun.Status.COMPLETED,
    EventType.ASSISTANT_ERROR: ScheduleRun.Status.FAILED,
    EventType.ASSISTANT_CANCELLED: ScheduleRun.Status.CANCELLED,
}


def schedule_run_ended(end: TurnEnd) -> None:
    """From the end of a turn (in its finishing transaction): the run's outcome, the failure
    streak, and ``schedule.run_finished`` for the tenant's webhooks. No statement for a turn
    that no schedule sent."""
    metadata = end.claim.user_metadata if end.claim is not None else None
    run_id = (metadata or {}).get(RUN_KEY) if end.claim is not None else None
    if end.claim is not None and not run_id:
        return
    runs = ScheduleRun.objects.select_related("schedule").filter(turn_id=end.turn_id, tenant_id=end.tenant_id)
    run = runs.filter(pk=run_id).first() if run_id else runs.first()
    if run is None:
        return
    status = OUTCOMES.get(end.type, ScheduleRun.Status.FAILED)  # type: ignore[call-overload]
    # The turn's usage is prompt_tokens and completion_tokens (as the budget counts it).
    tokens = sum(int(end.usage.get(k) or 0) for k in ("prompt_tokens", "completion_tokens")) or None
    ScheduleRun.objects.filter(pk=run.pk).update(status=status, ended_at=timezone.now(), tokens=tokens)
    schedule = run.schedule
    if status == ScheduleRun.Status.COMPLETED:
        Schedule.objects.filter(pk=schedule.pk).update(consecutive_failures=0)
    elif status == ScheduleRun.Status.FAILED:
        run_failed(schedule, str(end.data.get("message") or end.data.get("code") or "the turn failed"))
    error = (
        end.data.get("message") or end.data.get("code") if status != ScheduleRun.Status.COMPLETED else None
    )
    run_finished_tell(
        run,
        status=status,
        session_id=str(end.session_id),
        turn_id=str(end.turn_id),
        tokens=tokens,
        error=str(error) if error else None,
    )


def run_finished_tell(
    run: ScheduleRun,
    *,
    status: str,
    session_id: str | None = None,
    turn_id: str | None = None,
    tokens: int | None = None,
    error: str | None = None,
) -> None:
    """``schedule.run_finished`` for the tenant's webhooks, in the caller's transaction: a run
    that ended as a turn, or one refused at its start (no turn, no chat)."""
    webhook_emit(
        tenant_id=run.tenant_id,
        event="schedule.run_finished",
        subject=str(run.pk),
        data={
            "schedule_id": str(run.schedule_id),
            "run_id": str(run.pk),
            "due_at": run.due_at.isoformat(),
            "manual": run.manual,
            "status": status,
            "session_id": session_id,
            "turn_id": turn_id,
            "tokens": tokens,
            "error": error,
        },
    )
