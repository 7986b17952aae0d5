"""Making and changing schedules, and running them: the beat's tick and "run now" (a run's end: outcomes)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Count, F, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from conversations.schedules.models import Schedule, ScheduleRun
from conversations.schedules.outcomes import RUN_KEY, run_failed, run_finished_tell
from conversations.schedules.owners import owner_fields, owner_principal
from conversations.schedules.timing import cron_next, cron_parse, interval_next, zone
from conversations.selectors import session_for
from conversations.services.accept import MessageInput
from conversations.turn.admission import message_admit_accept
from somaagent.environment import env_float, env_int
from somaagent.errors import Forbidden, NotFound, SomaError, ValidationFailed
from somaagent.flags.services import flag_enabled
from somaagent.identity.principal import Principal
from somaagent.models import Persona

log = logging.getLogger(__name__)

FLAG = "schedules"  # staff turn a tenant's schedules off (feature flag, on by default)
TICK_BATCH = 200
MAX_PER_TENANT = 100


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


def _allowed(tenant: Any) -> None:
    """Staff turn a tenant's schedules off with the flag: no new ones, and due runs refused."""
    if not flag_enabled(FLAG, tenant, default=True):
        raise Forbidden("Schedules are turned off for this tenant.", code="schedules_disabled")


def _target(principal: Principal, data: ScheduleInput) -> tuple[Any, Persona | None]:
    """The chat runs go to (one the caller may see) and the persona, both optional."""
    session = session_for(principal, data.session_id) if data.session_id is not None else None
    persona = None
    if data.persona_id is not None:
        persona = Persona.objects.filter(tenant=principal.tenant, pk=data.persona_id).first()
        if persona is None:
            raise NotFound("No such persona.")
    return session, persona


def schedule_create(*, principal: Principal, data: ScheduleInput) -> Schedule:
    _allowed(principal.tenant)
    fields = _check(data)
    if Schedule.objects.for_tenant(principal.tenant).count() >= MAX_PER_TENANT:
        raise ValidationFailed(f"A tenant has at most {MAX_PER_TENANT} schedules.")
    session, persona = _target(principal, data)
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


def schedule_update(*, principal: Principal, schedule: Schedule, data: ScheduleInput) -> Schedule:
    """Replace what can be changed; turning it on again clears a pause and its failure count."""
    fields = _check(data)
    schedule.session, schedule.persona = _target(principal, data)
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


def tenant_slots() -> int:
    """Background runs of one tenant at once (its other due runs wait their turn)."""
    return env_int("SOMA_SCHEDULE_TENANT_CONCURRENCY", 4)


def total_slots() -> int:
    """Background runs of all tenants at once: the worker keeps the rest for people."""
    return env_int("SOMA_SCHEDULE_MAX_RUNNING", 32)


def stale_after() -> timedelta:
    """A run still ``queued`` after this (its chat was deleted with the turn) frees its slot."""
    return timedelta(seconds=env_float("SOMA_SCHEDULE_RUN_STALE_SECONDS", 3600.0))


def _start(run: ScheduleRun) -> None:
    """Send the run's message as the schedule's owner (in the caller's transaction)."""
    schedule = run.schedule
    now = timezone.now()
    try:
        _allowed(schedule.tenant_id)
        accepted = message_admit_accept(
            principal=owner_principal(schedule),
            data=MessageInput(
                message=render(schedule.message, run.due_at, schedule.timezone),
                session_id=schedule.session_id,
                persona_id=schedule.persona_id if schedule.session_id is None else None,
                metadata={RUN_KEY: str(run.pk)},
            ),
            idempotency_key=f"schedule-run:{run.pk}",
        )
    except SomaError as exc:
        # Refused before anything was written (policy, budget, the owner's access): no turn.
        ScheduleRun.objects.filter(pk=run.pk).update(
            status=ScheduleRun.Status.REFUSED, error=exc.message[:500], started_at=now, ended_at=now
        )
        run_failed(schedule, exc.message)
        run_finished_tell(run, status=ScheduleRun.Status.REFUSED, error=exc.message[:500])
        return
    ScheduleRun.objects.filter(pk=run.pk).update(
        status=ScheduleRun.Status.QUEUED,
        session_id=accepted["session_id"],
        turn_id=accepted["turn_id"],
        started_at=now,
    )


def schedule_run_now(*, schedule: Schedule) -> ScheduleRun:
    """A run outside the schedule's times; it waits for a slot like any other."""
    _allowed(schedule.tenant_id)
    return ScheduleRun.objects.create(
        schedule=schedule, tenant_id=schedule.tenant_id, due_at=timezone.now(), manual=True
    )


def schedule_tick(*, now: datetime | None = None) -> int:
    """The beat's tick: due times become waiting runs, then waiting runs start as slots allow.
    Returns how many runs started."""
    now = now or timezone.now()
    _materialise(now)
    return _start_waiting(now)


def _materialise(now: datetime) -> None:
    due = list(
        Schedule.objects.filter(enabled=True, next_run_at__lte=now)
        .order_by("next_run_at")
        .values_list("pk", flat=True)[:TICK_BATCH]
    )
    for pk in due:
        with transaction.atomic():
            # Another tick (a second beat, an overlapping one) holding it does it; this one moves on.
            schedule = (
                Schedule.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, enabled=True, next_run_at__lte=now)
                .first()
            )
            if schedule is not None and schedule.next_run_at is not None:
                _due(schedule, now)


def _due(schedule: Schedule, now: datetime) -> None:
    """Write the run of the schedule's due time (one, however many passed) and move on."""
    assert schedule.next_run_at is not None
    due_at = schedule.next_run_at
    latest, following = _last_passed(schedule, due_at, now)
    # The first due time not yet run is long past: the system (or the beat) was down, and the
    # schedule says whether what was missed runs once now or is skipped.
    skipped = now - due_at > late_grace() and schedule.missed == Schedule.Missed.SKIP
    # A due time that already has its run (staff moved the next run back, the cron was edited
    # to an earlier time) keeps that one run: the unique (schedule, due_at) pair ignores it.
    ScheduleRun.objects.bulk_create(
        [
            ScheduleRun(
                schedule=schedule,
                tenant_id=schedule.tenant_id,
                due_at=latest,
                **(
                    {
                        "status": ScheduleRun.Status.SKIPPED,
                        "error": "missed while the system was down",
                        "ended_at": now,
                    }
                    if skipped
                    else {}
                ),
            )
        ],
        ignore_conflicts=True,
    )
    schedule.next_run_at = following
    if following is None:
        schedule.enabled = False  # past its end: done
    schedule.save(update_fields=["next_run_at", "enabled"])


MAX_STEPS = 1000  # cron due times stepped through to find the last one that passed (about 0.5 s)


def _last_passed(schedule: Schedule, due_at: datetime, now: datetime) -> tuple[datetime, datetime | None]:
    """Of the due times from ``due_at`` to ``now``, the last (the run's), and the first after
    ``now``. An interval's is arithmetic; a cron's is stepped to, at most MAX_STEPS (a
    minutely cron down for 17 hours); past that, the last one reached stands for them."""
    following = next_due(schedule, now)
    if schedule.kind == Schedule.Kind.INTERVAL:
        passed = interval_next(
            schedule.anchor, float(schedule.interval_seconds or 0), now - timedelta(microseconds=1)
        )
        latest = (
            passed if passed <= now else passed - timedelta(seconds=float(schedule.interval_seconds or 0))
        )
        return max(latest, due_at), following
    latest, step = due_at, next_due(schedule, due_at)
    for _ in range(MAX_STEPS):
        if step is None or step > now:
            break
        latest, step = step, next_due(schedule, step)
    return latest, following


def _start_waiting(now: datetime) -> int:
    """Start waiting runs, fairly: at most ``tenant_slots()`` running per tenant and
    ``total_slots()`` in all, the oldest of each tenant first, tenants taking turns (the one
    with the fewest running first), so a tenant with a thousand due runs takes its share and
    no more."""
    # A schedule turned off (by its owner, staff, or its failures) runs no more: its due times
    # still waiting for a slot are skipped. Not a "run now", nor the last due time of a schedule
    # that ended (off too, with no next run).
    ScheduleRun.objects.filter(
        status=ScheduleRun.Status.WAITING,
        manual=False,
        schedule__enabled=False,
        schedule__next_run_at__isnull=False,
    ).update(status=ScheduleRun.Status.SKIPPED, error="the schedule was turned off", ended_at=now)
    fresh = Q(status=ScheduleRun.Status.QUEUED, started_at__gt=now - stale_after())
    running = dict(
        ScheduleRun.objects.filter(fresh)
        .values("tenant_id")
        .annotate(n=Count("id"))
        .values_list("tenant_id", "n")
    )
    free = total_slots() - sum(running.values())
    if free <= 0:
        return 0
    # The oldest few waiting runs of each tenant (never more than it could start now).
    ranked = (
        ScheduleRun.objects.filter(status=ScheduleRun.Status.WAITING)
        .annotate(rank=Window(RowNumber(), partition_by=[F("tenant_id")], order_by=[F("due_at").asc()]))
        .filter(rank__lte=tenant_slots())
        .values_list("pk", "tenant_id", "rank")
    )
    queues: dict[uuid.UUID, list[uuid.UUID]] = {}
    for pk, tenant_id, _rank in sorted(ranked, key=lambda row: row[2]):
        queues.setdefault(tenant_id, []).append(pk)
    order: list[uuid.UUID] = []
    while queues and len(order) < free:
        for tenant_id in sorted(queues, key=lambda t: running.get(t, 0)):
            if running.get(tenant_id, 0) < tenant_slots() and queues[tenant_id]:
                order.append(queues[tenant_id].pop(0))
                running[tenant_id] = running.get(tenant_id, 0) + 1
            if not queues[tenant_id] or running.get(tenant_id, 0) >= tenant_slots():
                del queues[tenant_id]
            if len(order) >= free:
                break
    started = 0
    for pk in order:
        try:
            with transaction.atomic():
                run = (
                    ScheduleRun.objects.select_for_update(skip_locked=True, of=("self",))
                    .select_related("schedule")
                    .filter(pk=pk, status=ScheduleRun.Status.WAITING)
                    .first()
                )
                if run is not None:
                    _start(run)
                    started += 1
        except (OperationalError, InterfaceError):
            raise  # the database is away: every run waits for the next tick
        except Exception as exc:  # one run's surprise must not stop the others
            _start_failed(pk, exc)
    return started


def _start_failed(pk: uuid.UUID, exc: Exception) -> None:
    """A start that raised something other than a refusal (rolled back whole): the run failed.
    Left waiting it would be the oldest again at every tick, ahead of every other run."""
    log.exception("schedule run could not start", extra={"run_id": str(pk)})
    error = f"could not start: {exc.__class__.__name__}: {exc}"[:500]
    now = timezone.now()
    with transaction.atomic():
        run = (
            ScheduleRun.objects.select_for_update(of=("self",))
            .select_related("schedule")
            .filter(pk=pk, status=ScheduleRun.Status.WAITING)
            .first()
        )
        if run is None:
            return
        ScheduleRun.objects.filter(pk=pk).update(
            status=ScheduleRun.Status.FAILED, error=error, started_at=now, ended_at=now
        )
        run_failed(run.schedule, error)
        run_finished_tell(run, status=ScheduleRun.Status.FAILED, error=error)
