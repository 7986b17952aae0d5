"""Celery entry points of the memory package (queue ``memory``): thin calls into services."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from memory.services.delivery import Claim, DeliveryResult, memory_deliver, memory_sweep
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
def deliver(
    write_id: int | None = None, token: str = "", claims: list[list[Any]] | None = None
) -> dict[str, object]:
    """Deliver the streams of ``claims`` ([write id, lease token] each) one after another;
    ``write_id``/``token``: one claim (messages queued before batches existed)."""
    todo = [Claim(write_id=int(w), token=str(t)) for w, t in (claims or [])]
    if write_id is not None:
        todo.append(Claim(write_id=int(write_id), token=token))
    total = DeliveryResult()
    more: list[Claim] = []
    for claim in todo:
        result = memory_deliver(write_id=claim.write_id, token=claim.token)
        total.merge(result)
        if result.next_claim is not None:
            more.append(result.next_claim)
    if more:
        dispatch_claims(claims=more)
    if total.delivered:
        replicate_soon()
    return total.as_dict()


@shared_task(name="memory.sweep", ignore_result=True, time_limit=60, soft_time_limit=50)
def sweep() -> int:
    return dispatch_claims(claims=memory_sweep())


@shared_task(name="memory.replicate", acks_late=True, ignore_result=True, time_limit=300, soft_time_limit=270)
def replicate() -> dict[str, int]:
    return memory_replicate()
