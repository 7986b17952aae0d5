"""Celery entry points of the tools package (queue ``tools``): thin calls into services."""

from __future__ import annotations

import os

from celery import Task, shared_task

from tools.execute import tool_run_execute, tool_run_sweep


# acks_late without reject_on_worker_lost: a redelivered message finds its run already claimed
# and does nothing, and a tool that killed its worker process is not run again in a loop.
@shared_task(
    name="tools.run",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=False,
    ignore_result=True,
    time_limit=660,
    soft_time_limit=600,
)
def run_tool(self: Task, request_id: str) -> str | None:
    return tool_run_execute(request_id=request_id, worker=f"{self.request.hostname}:{os.getpid()}")


@shared_task(name="tools.sweep", ignore_result=True, time_limit=60, soft_time_limit=50)
def run_tool_sweep() -> int:
    return tool_run_sweep()
