"""Celery entry points of the conversation package: thin calls into services."""

from __future__ import annotations

import os
import uuid

from celery import Task, shared_task

from conversations.schedules.services import schedule_tick
from conversations.services.approval_answer import approvals_expire
from conversations.services.summary import session_summarise
from conversations.services.titles import session_title_propose
from conversations.turn.dispatch import turn_sweep
from conversations.turn.runner import llm_port, turn_run
from conversations.webhooks.delivery import webhook_deliver_many, webhook_due


@shared_task(
    name="conversation.run_turn",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=900,
    soft_time_limit=840,
    ignore_result=True,
)
def run_turn(self: Task, turn_id: str) -> None:
    owner = f"{self.request.hostname}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    turn_run(turn_id=turn_id, owner=owner)


@shared_task(name="conversation.turn_sweep", ignore_result=True, time_limit=60, soft_time_limit=50)
def run_turn_sweep() -> dict[str, int]:
    # Approvals nobody answered in time end as denied; their turns go on (dispatched here).
    return {**turn_sweep(), "approvals_expired": approvals_expire()}


@shared_task(
    name="conversation.propose_title",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=120,
    soft_time_limit=110,
    ignore_result=True,
)
def propose_title(session_id: str) -> str:
    return session_title_propose(session_id=session_id, port=llm_port())


@shared_task(
    name="conversation.summarise_session",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=600,
    soft_time_limit=570,
    ignore_result=True,
)
def summarise_session(session_id: str, leaf: str | None = None) -> str:
    return session_summarise(session_id=session_id, port=llm_port(), leaf=leaf)


@shared_task(
    name="webhooks.deliver",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=300,
    soft_time_limit=280,
    ignore_result=True,
)
def webhook_deliver(delivery_ids: list[str]) -> dict[str, int]:
    """One try of each delivery (the outbox's kick after commit, or the sweep's batch)."""
    return webhook_deliver_many(delivery_ids)


@shared_task(name="webhooks.sweep", ignore_result=True, time_limit=60, soft_time_limit=50)
def webhook_sweep() -> int:
    """Due deliveries (a retry's time, a lost kick, an expired lease) go to the workers."""
    due = webhook_due()
    for start in range(0, len(due), 10):
        webhook_deliver.delay(due[start : start + 10])
    return len(due)


@shared_task(name="schedules.tick", ignore_result=True, time_limit=120, soft_time_limit=110)
def schedules_tick() -> int:
    """The beat's tick: every schedule whose due time has come runs (once per due time)."""
    return schedule_tick()
