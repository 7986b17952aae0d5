"""An event becomes one delivery per subscribed endpoint, in the caller's transaction."""

from __future__ import annotations

import uuid
from typing import Any

from django.utils import timezone

from conversations.webhooks.endpoints import subscriptions
from conversations.webhooks.models import ALL_EVENTS, WebhookDelivery
from somaagent.outbox import outbox_enqueue
from somaagent.sql import insert_objects

DELIVER_TOPIC = "webhook.deliver"
DELIVER_TASK = "webhooks.deliver"


def webhook_emit(*, tenant_id: uuid.UUID, event: str, subject: str, data: dict[str, Any]) -> int:
    """Queue ``event`` for the tenant's endpoints that want it; returns how many.

    Inside the transaction that makes the event true, so a rolled-back change tells no
    one. Once per endpoint, event and subject: a turn finished twice (it never is, but a
    restarted finisher may call this twice) is delivered once. No endpoint: no statement.
    """
    wanted = [
        pk for pk, events in subscriptions.get(str(tenant_id)) if event in events or ALL_EVENTS in events
    ]
    if not wanted:
        return 0
    now = timezone.now()
    # One event id for every endpoint told about it; each delivery has an id of its own.
    body = {
        "id": str(uuid.uuid4()),
        "type": event,
        "created_at": now.isoformat(),
        "tenant_id": str(tenant_id),
        "data": data,
    }
    rows = [
        WebhookDelivery(
            endpoint_id=pk,
            tenant_id=tenant_id,
            event=event,
            subject=subject,
            payload=body,
            next_attempt_at=now,
            retry_from=now,
            created_at=now,
        )
        for pk in wanted
    ]
    created = insert_objects(rows, ignore_conflicts=True, returning=("id",))
    if created:
        ids = [str(row[0]) for row in created]
        outbox_enqueue(topic=DELIVER_TOPIC, payload={"delivery_ids": ids}, dedupe_key=f"webhook:{ids[0]}")
    return len(created)
