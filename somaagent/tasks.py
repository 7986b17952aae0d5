"""Celery entry points of the core: the outbox sweep and a no-op for benchmarks."""

from __future__ import annotations

from celery import shared_task

from somaagent.outbox import outbox_sweep


@shared_task(name="soma.outbox_sweep", ignore_result=True, time_limit=60, soft_time_limit=50)
def run_outbox_sweep() -> dict[str, int]:
    return outbox_sweep()


@shared_task(name="soma.noop", ignore_result=False)
def noop() -> str:
    """A bare task: benchmarks compare turn latency with its round trip."""
    return "ok"
