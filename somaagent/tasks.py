"""Celery entry points of the core: the outbox sweep and a no-op for benchmarks."""

from __future__ import annotations

from celery import shared_task

from somaagent.flags.services import flag_enabled
from somaagent.housekeeping import housekeeping_run
from somaagent.outbox import outbox_sweep


@shared_task(name="soma.outbox_sweep", ignore_result=True, time_limit=60, soft_time_limit=50)
def run_outbox_sweep() -> dict[str, int]:
    return outbox_sweep()


@shared_task(name="soma.noop", ignore_result=False)
def noop() -> str:
    """A bare task: benchmarks compare turn latency with its round trip."""
    return "ok"


@shared_task(name="soma.housekeeping", ignore_result=True, time_limit=300, soft_time_limit=280)
def run_housekeeping() -> dict[str, int]:
    return housekeeping_run()


@shared_task(name="soma.flag_evaluate", ignore_result=False, time_limit=10)
def flag_evaluate(name: str, tenant_id: str | None = None) -> bool:
    """What a worker process sees for a flag right now (operators' diagnostic)."""
    return flag_enabled(name, tenant_id)
