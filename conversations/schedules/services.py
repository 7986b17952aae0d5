"""Making and changing schedules, and running them: the beat's tick, "run now", and a run's end."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from conversations.models import EventType
from conversations.schedules.models import Schedule, ScheduleRun
from conversations.schedules.owners import owner_fields, owner_principal
from conversations.schedules.timing import cron_next, cron_parse, interval_next, zone
from conversations.selectors import session_for
from conversations.services.accept import MessageInput
from conversations.services.admission import message_admit_accept
from conversations.services.turns import TurnEnd
from conversations.webhooks.emit import webhook_emit
from somaagent.config import env_float, env_int
from somaagent.errors import Forbidden, NotFound, SomaError, ValidationFailed
from somaagent.flags.services import flag_enabled
from somaagent.identity import Principal
from somaagent.models import Persona

log = logging.getLogger(__name__)

FLAG = "schedules"  # staff turn a tenant's schedules off (feature flag, on by default)
RUN_KEY = "schedule_run"  # in the run's user message metadata: which run the turn belongs to
TICK_BATCH = 200
MAX_PER_TENANT = 100


def max_failures() -> int:
    return env_int("SOMA_SCHEDULE_MAX_FAILURES", 3)


def min_interval() -> float:
    return env_float("SOMA_SCHEDULE_MIN_INTERVAL_SECONDS", 60.0)


def late_grace() -> timedelta:
    """A due time older than this when the tick sees it was missed (the system was down)."""
    return timedelta(seconds=env_float("SOMA_SCHEDULE_LATE_SECONDS", 300.0))


@dataclass(frozen=True)
class ScheduleInput:
    name: str
    message: str
    cron: str = ""
    interval_seconds: int | None = None
    timezone: str = "UTC"
    session_id: uuid.UUID | None = None
    persona_id: uuid.UUID | None = None
    ends_at: datetime | None = None
    missed: str = Schedule.Missed.RUN_ONCE
    enabled: bool = True


def next_due(schedule: Schedule, after: datetime) -> datetime | None:
    """The schedule's first due time after ``after`` (None: it has ended)."""
    if schedule.kind == Schedule.Kind.CRON:
        due = cron_next(cron_parse(schedule.cron), zone(schedule.timezone), after)
    else:
        due = interval_next(schedule.anchor, float(schedule.interval_seconds or 0), after)
    if due is not None and schedule.ends_at is not None and due > schedule.ends_at:
        return None
    return due


def _check(data: ScheduleInput) -> dict[str, Any]:
    name = (data.name or "").strip()
    if not name or len(name) > 120:
        raise ValidationFailed("name must be 1 to 120 characters.")
    if not data.message.strip() or len(data.message) > settings.SOMA.max_message_chars:
        raise ValidationFailed(f"message must be 1 to {settings.SOMA.max_message_chars} characters.")
    zone(data.timezone)
    if bool(data.cron) == (data.interval_seconds is not None):
        raise ValidationFailed("Give either cron or interval_seconds.")
    if data.cron:
        cron_parse(data.cron)
        kind = Schedule.Kind.CRON
    else:
        if (data.interval_seconds or 0) < min_interval():
            raise ValidationFailed(f"interval_seconds must be at least {min_interval():g}.")
        kind = Schedule.Kind.INTERVAL
    if data.missed not in Schedule.Missed.values:
        raise ValidationFailed(f"missed must be one of {', '.join(Schedule.Missed.values)}.")
    return {
        "name": name,
        "message": data.message,
        "kind": kind,
        "cron": data.cron.strip() if data.cron else "",
        "interval_seconds": data.interval_seconds if not data.cron else None,
        "timezone": data.timezone,
        "ends_at": data.ends_at,
        "missed": data.missed,
        "enabled": data.enabled,
    }


def _allowed(principal: Principal) -> None:
    if not flag_enabled(FLAG, principal.tenant, default=True):
        raise Forbidden("Schedules are turned off for this tenant.", code="schedules_disabled")


def schedule_create(*, principal: Principal, data: ScheduleInput) -> Schedule:
    _allowed(principal)
    fields = _check(data)
    if Schedule.objects.for_tenant(principal.tenant).count() >= MAX_PER_TENANT:
        raise ValidationFailed(f"A tenant has at most {MAX_PER_TENANT} schedules.")
    session = session_for(principal, data.session_id) if data.session_id is not None else None
    persona = None
    if data.persona_id is not None:
        persona = Persona.objects.filter(tenant=principal.tenant, pk=data.persona_id).first()
        if persona is None:
            raise NotFound("No such persona.")
    now = timezone.now()
    schedule = Schedule(
        tenant=principal.tenant,
        session=session,
        persona=persona,
        anchor=now,
        **fields,
        **owner_fields(principal),
    )
    schedule.next_run_at = next_due(schedule, now)
    schedule.save()
    return schedule


def schedule_update(*, schedule: Schedule, data: ScheduleInput) -> Schedule:
    """Replace what can be changed; turning it on again clears a pause and its failure count."""
    fields = _check(data)
    now = timezone.now()
    for name, value in fields.items():
        setattr(schedule, name, value)
    if schedule.enabled:
        schedule.paused_reason, schedule.consecutive_failures = "", 0
    schedule.anchor = now if schedule.kind == Schedule.Kind.INTERVAL else schedule.anchor
    schedule.next_run_at = next_due(schedule, now)
    schedule.save()
    return schedule


def render(template: str, due_at: datetime, tz_name: str) -> str:
    """{date}, {time} and {datetime} become the due time in the schedule's zone (plain replacement:
    no format-string surprises from what a user typed)."""
    local = due_at.astimezone(zone(tz_name))
    return (
        template.replace("{datetime}", local.strftime("%Y-%m-%d %H:%M %Z"))
        .replace("{date}", local.strftime("%Y-%m-%d"))
        .replace("{time}", local.strftime("%H:%M"))
    )


def _run(schedule: Schedule, due_at: datetime, *, manual: bool = False) -> ScheduleRun:
    """Write the run and send its message, in the caller's transaction (the schedule is locked)."""
    run = ScheduleRun.objects.create(
        schedule=schedule, tenant_id=schedule.tenant_id, due_at=due_at, manual=manual
    )
    try:
        if not flag_enabled(FLAG, schedule.tenant_id, default=True):
            raise Forbidden("Schedules are turned off for this tenant.", code="schedules_disabled")
        principal = owner_principal(schedule)
        accepted = message_admit_accept(
            principal=principal,
            data=MessageInput(
                message=render(schedule.message, due_at, schedule.timezone),
                session_id=schedule.session_id,
                persona_id=schedule.persona_id if schedule.session_id is None else None,
                metadata={RUN_KEY: str(run.pk)},
            ),
            idempotency_key=f"schedule-run:{run.pk}",
        )
    except SomaError as exc:
        # Refused before anything was written (policy, budget, the owner's access): no turn.
        run.status, run.error, run.ended_at = ScheduleRun.Status.REFUSED, exc.message[:500], timezone.now()
        run.save(update_fields=["status", "error", "ended_at"])
        _failed(schedule, exc.message)
        return run
    run.session_id, run.turn_id = accepted["session_id"], accepted["turn_id"]
    run.save(update_fields=["session_id", "turn_id"])
    return run


def schedule_run_now(*, schedule: Schedule) -> ScheduleRun:
    with transaction.atomic():
        locked = Schedule.objects.select_for_update().get(pk=schedule.pk)
        return _run(locked, timezone.now(), manual=True)


def schedule_tick(*, now: datetime | None = None) -> int:
    """Run every schedule whose due time has come, each in a transaction of its own; returns runs."""
    now = now or timezone.now()
    due = list(
        Schedule.objects.filter(enabled=True, next_run_at__lte=now)
        .order_by("next_run_at")
        .values_list("pk", flat=True)[:TICK_BATCH]
    )
    runs = 0
    for pk in due:
        with transaction.atomic():
            # Another tick (a second beat, an overlapping one) holding it runs it; this one moves on.
            schedule = (
                Schedule.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, enabled=True, next_run_at__lte=now)
                .first()
            )
            if schedule is None or schedule.next_run_at is None:
                continue
            runs += _due(schedule, now)
    return runs


def _due(schedule: Schedule, now: datetime) -> int:
    assert schedule.next_run_at is not None
    due_at = schedule.next_run_at
    latest = due_at  # of the due times that passed, the last one (others were missed)
    following = next_due(schedule, due_at)
    while following is not None and following <= now:
        latest, following = following, next_due(schedule, following)
    # The first due time not yet run is long past: the system was down (or the beat was),
    # and the schedule says whether what was missed runs once now or is skipped.
    missed = now - due_at > late_grace()
    ran = 0
    if missed and schedule.missed == Schedule.Missed.SKIP:
        ScheduleRun.objects.create(
            schedule=schedule,
            tenant_id=schedule.tenant_id,
            due_at=latest,
            status=ScheduleRun.Status.SKIPPED,
            error="missed while the system was down",
            ended_at=now,
        )
    else:
        _run(schedule, latest)
        ran = 1
    schedule.refresh_from_db(fields=["enabled", "consecutive_failures", "paused_reason"])
    schedule.next_run_at = following
    if following is None:
        schedule.enabled = False  # past its end: done
    schedule.save(update_fields=["next_run_at", "enabled"])
    return ran


def _failed(schedule: Schedule, reason: str) -> None:
    """One more failure in a row; at the limit the schedule is paused and says why."""
    failures = schedule.consecutive_failures + 1
    fields: dict[str, Any] = {"consecutive_failures": failures}
    if failures >= max_failures():
        fields |= {
            "enabled": False,
            "paused_reason": f"Paused after {failures} failed runs in a row; the last: {reason}"[:300],
        }
        log.warning("schedule paused", extra={"schedule_id": str(schedule.pk), "failures": failures})
    Schedule.objects.filter(pk=schedule.pk).update(**fields)
    for name, value in fields.items():
        setattr(schedule, name, value)


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
    tokens = int(end.usage.get("total_tokens") or 0) or None
    ScheduleRun.objects.filter(pk=run.pk).update(status=status, ended_at=timezone.now(), tokens=tokens)
    schedule = run.schedule
    if status == ScheduleRun.Status.COMPLETED:
        Schedule.objects.filter(pk=schedule.pk).update(consecutive_failures=0)
    elif status == ScheduleRun.Status.FAILED:
        _failed(schedule, str(end.data.get("message") or end.data.get("code") or "the turn failed"))
    webhook_emit(
        tenant_id=end.tenant_id,
        event="schedule.run_finished",
        subject=str(run.pk),
        data={
            "schedule_id": str(schedule.pk),
            "run_id": str(run.pk),
            "due_at": run.due_at.isoformat(),
            "status": status,
            "session_id": str(end.session_id),
            "turn_id": str(end.turn_id),
        },
    )
