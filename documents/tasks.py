"""Celery entry points of the documents package: thin calls into services."""

from __future__ import annotations

from celery import shared_task

from documents.conf import INGEST_TIME_LIMIT
from documents.services.ingest import document_ingest


@shared_task(
    name="documents.ingest",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=INGEST_TIME_LIMIT,
    soft_time_limit=INGEST_TIME_LIMIT - 30,
    ignore_result=True,
)
def ingest(document_id: str) -> str:
    return document_ingest(document_id=document_id)
