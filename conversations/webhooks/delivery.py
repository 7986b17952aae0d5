"""Sending deliveries: lease, POST signed, then delivered, tried again later, or dead.

A try leases the row (``lease_until``) in a short transaction of its own and gives
the database connection back before the HTTP call, so a slow receiver holds a
worker thread, never a pooled connection. The address is checked like
``http_fetch``'s (public only, unless staff allowed private ones for this endpoint)
and the request goes to the checked address, so DNS cannot swap it.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from conversations.webhooks.emit import DELIVER_TOPIC
from conversations.webhooks.endpoints import secrets_in_use
from conversations.webhooks.models import WebhookDelivery
from conversations.webhooks.signing import SIGNATURE_HEADER, signature_header
from somaagent.db_hold import db_release
from somaagent.environment import env_float, env_int
from somaagent.models import DeadLetter
from somaagent.outbox import outbox_enqueue
from somaagent.process_local import PerProcess
from somaagent.retry import backoff_delay, parse_retry_after
from tools.netguard import Refused, resolve_checked

log = logging.getLogger(__name__)

# One client per process (connections kept alive per checked address). No redirects (one could
# lead past the address check), no proxies from the environment (the checked address must be
# the one connected to).
_client = PerProcess(lambda: httpx.Client(follow_redirects=False, trust_env=False))

DEAD_LETTER_TOPIC = "webhook.delivery"
USER_AGENT = "SomaAgent-Webhook/1"
SWEEP_BATCH = 100


def retry_span() -> timedelta:
    """How long a failing delivery is tried before it is dead (from its creation or replay)."""
    return timedelta(seconds=env_float("SOMA_WEBHOOK_RETRY_SPAN_SECONDS", 6 * 3600.0))


def _backoff(attempt: int, retry_after: float | None) -> float:
    return backoff_delay(
        attempt,
        base=env_float("SOMA_WEBHOOK_BACKOFF_BASE_SECONDS", 5.0),
        cap=env_float("SOMA_WEBHOOK_BACKOFF_CAP_SECONDS", 900.0),
        retry_after=retry_after,
    )


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None = None
    error: str = ""
    retry_after: float | None = None
    duration_ms: float = 0.0


def _due(now: datetime) -> Q:
    """Pending, its time come, held by no one (no lease, or an expired one), and its endpoint on
    (one turned off is sent nothing: its deliveries wait until it is on again)."""
    return Q(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now, endpoint__enabled=True) & (
        Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    )


def _lease(delivery_id: uuid.UUID) -> WebhookDelivery | None:
    """Take the delivery for one try if it is pending, due and not leased by someone else."""
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            # Only the delivery's row: locking its endpoint too would make concurrent tries of
            # one endpoint's deliveries skip each other.
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint")
            .filter(_due(now), pk=delivery_id)
            .first()
        )
        if delivery is None:
            return None
        lease = timedelta(seconds=delivery.endpoint.timeout_seconds + 30)
        delivery.attempts += 1
        delivery.lease_until = now + lease
        delivery.save(update_fields=["attempts", "lease_until"])
    return delivery


def _request(delivery: WebhookDelivery) -> httpx.Request:
    endpoint = delivery.endpoint
    url = httpx.URL(endpoint.url)
    port = url.port or (443 if url.scheme == "https" else 80)
    target = resolve_checked(url.host, port, allow_private=endpoint.allow_private)
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = int(time.time())
    headers = {
        "Host": url.host if url.port is None else f"{url.host}:{url.port}",
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Soma-Event": delivery.event,
        "Soma-Delivery": str(delivery.pk),
        SIGNATURE_HEADER: signature_header(secrets_in_use(endpoint), timestamp=timestamp, body=body),
    }
    extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
    return httpx.Request(
        "POST", url.copy_with(host=target.address), headers=headers, content=body, extensions=extensions
    )


def _send(delivery: WebhookDelivery) -> Outcome:
    try:
        request = _request(delivery)
    except Refused as exc:
        return Outcome(ok=False, error=f"address refused: {exc}")
    db_release()  # no pooled connection held while the receiver takes its time
    began = time.monotonic()
    request.extensions["timeout"] = httpx.Timeout(delivery.endpoint.timeout_seconds).as_dict()
    try:
        response = _client.get().send(request)
    except httpx.TimeoutException:
        return Outcome(ok=False, error="timed out", duration_ms=(time.monotonic() - began) * 1000)
    except httpx.HTTPError as exc:
        return Outcome(
            ok=False,
            error=f"{exc.__class__.__name__}: {exc}"[:500],
            duration_ms=(time.monotonic() - began) * 1000,
        )
    ms = (time.monotonic() - began) * 1000
    if 200 <= response.status_code < 300:
        return Outcome(ok=True, status_code=response.status_code, duration_ms=ms)
    return Outcome(
        ok=False,
        status_code=response.status_code,
        error=f"HTTP {response.status_code}",
        retry_after=parse_retry_after(response.headers.get("retry-after")),
        duration_ms=ms,
    )


def _settle(delivery: WebhookDelivery, outcome: Outcome) -> str:
    now = timezone.now()
    fields: dict[str, Any] = {
        "lease_until": None,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
        "last_duration_ms": round(outcome.duration_ms, 1),
    }
    if outcome.ok:
        fields |= {"status": WebhookDelivery.Status.DELIVERED, "delivered_at": now}
    elif now - delivery.retry_from >= retry_span():
        fields["status"] = WebhookDelivery.Status.DEAD
    else:
        fields["next_attempt_at"] = now + timedelta(seconds=_backoff(delivery.attempts, outcome.retry_after))
    with transaction.atomic():
        # Only while the lease is ours: a try that outlived its lease lost the row to another.
        updated = WebhookDelivery.objects.filter(pk=delivery.pk, lease_until=delivery.lease_until).update(
            **fields
        )
        if updated and fields.get("status") == WebhookDelivery.Status.DEAD:
            DeadLetter.objects.create(
                topic=DEAD_LETTER_TOPIC,
                event={
                    "delivery_id": str(delivery.pk),
                    "endpoint_id": str(delivery.endpoint_id),
                    "event": delivery.event,
                },
                error=outcome.error,
                attempts=delivery.attempts,
            )
    if not updated:
        return "lost_lease"
    return str(fields.get("status", "retry"))


def webhook_deliver(*, delivery_id: uuid.UUID) -> str:
    """One try of one delivery: ``delivered``, ``retry``, ``dead``, or ``skipped`` (not due,
    already settled, or being tried elsewhere)."""
    delivery = _lease(delivery_id)
    if delivery is None:
        return "skipped"
    outcome = _send(delivery)
    if not outcome.ok:
        log.info(
            "webhook delivery failed",
            extra={"delivery_id": str(delivery.pk), "attempt": delivery.attempts, "error": outcome.error},
        )
    return _settle(delivery, outcome)


def webhook_deliver_many(delivery_ids: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for raw in delivery_ids:
        result = webhook_deliver(delivery_id=uuid.UUID(str(raw)))
        counts[result] = counts.get(result, 0) + 1
    return counts


def webhook_due(*, limit: int = SWEEP_BATCH) -> list[str]:
    """Deliveries whose time has come and that no one holds (for the beat sweep)."""
    now = timezone.now()
    rows = (
        WebhookDelivery.objects.filter(_due(now))
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[: env_int("SOMA_WEBHOOK_SWEEP_BATCH", limit)]
    )
    return [str(pk) for pk in rows]


def webhook_replay(dead_letter: DeadLetter) -> bool:
    """Admin's replay of a dead delivery: pending again, due now, with a fresh retry span."""
    delivery_id = dead_letter.event.get("delivery_id")
    if not delivery_id:
        return False
    now = timezone.now()
    with transaction.atomic():
        updated = WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.DEAD).update(
            status=WebhookDelivery.Status.PENDING, next_attempt_at=now, retry_from=now, lease_until=None
        )
        if not updated:
            return False
        DeadLetter.objects.filter(pk=dead_letter.pk).update(replayed_at=now)
        outbox_enqueue(
            topic=DELIVER_TOPIC,
            payload={"delivery_ids": [str(delivery_id)]},
            dedupe_key=f"webhook-replay:{dead_letter.pk}:{now.timestamp()}",
        )
    return True
