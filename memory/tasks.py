"""Celery entry points of the memory package (queue ``memory``): thin calls into services."""

from __future__ import annotations

from celery import shared_task

from memory.services.delivery import memory_deliver, memory_sweep
from memory.services.dispatch import dispatch_claims, replicate_soon
from memory.services.replication import memory_replicate


@shared_task(
    name="memory.deliver",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=600,
    soft_time_limit=570,
    ignore_result=True,
)
def deliver(write_id: int, token: str) -> dict[str, object]:
    result = memory_deliver(write_id=write_id, token=token)
    if result.next_claim is not None:
        dispatch_claims(claims=[result.next_claim])
    if result.delivered:
        replicate_soon()
    return result.as_dict()


@shared_task(name="memory.sweep", ignore_result=True, time_limit=60, soft_time_limit=50)
def sweep() -> int:
    return dispatch_claims(claims=memory_sweep())


@shared_task(name="memory.replicate", acks_late=True, ignore_result=True, time_limit=300, soft_time_limit=270)
def replicate() -> dict[str, int]:
    return memory_replicate()
