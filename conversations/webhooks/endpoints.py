"""A tenant's webhook endpoints: register, change, rotate the secret, delete; and the cache the
finishing transaction reads them from (no statement per turn for a tenant without endpoints)."""

from __future__ import annotations

import uuid
from collections.abc import Hashable
from datetime import timedelta
from typing import Any

import httpx
from django.db import transaction
from django.utils import timezone

from conversations.webhooks.models import ALL_EVENTS, EVENTS, WebhookEndpoint
from conversations.webhooks.signing import secret_new
from somaagent.audit import Actor, audit_record
from somaagent.environment import env_float
from somaagent.errors import NotFound, ValidationFailed
from somaagent.models import AuditLog, Tenant
from somaagent.secrets import decrypt, encrypt
from somaagent.versioned import Versioned, invalidate_on_change

MAX_ENDPOINTS_PER_TENANT = 20
MIN_TIMEOUT, MAX_TIMEOUT = 1.0, 30.0


def rotation_grace() -> timedelta:
    """How long the secret before a rotation keeps signing next to the new one."""
    return timedelta(seconds=env_float("SOMA_WEBHOOK_ROTATION_GRACE_SECONDS", 86_400.0))


def url_check(url: str, *, allow_private: bool) -> str:
    """An absolute https URL without credentials (http too for a staff-allowed internal receiver).
    Where it resolves to is checked at every delivery, not here: names can change."""
    if not isinstance(url, str) or not url.strip() or len(url) > 2000:
        raise ValidationFailed(
            "url must be an absolute URL of at most 2000 characters.", details={"url": url}
        )
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, ValueError) as exc:
        raise ValidationFailed(f"url is not a valid URL: {exc}.", details={"url": url[:200]}) from None
    schemes = ("https", "http") if allow_private else ("https",)
    if parsed.scheme not in schemes or not parsed.host:
        raise ValidationFailed(
            "url must be an https:// URL (plain http only for an internal receiver staff allowed).",
            details={"url": url[:200]},
        )
    if parsed.userinfo:
        raise ValidationFailed("URLs with credentials are refused; sign with the secret instead.")
    return str(parsed)


def events_check(events: Any) -> list[str]:
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise ValidationFailed(
            "events must be a non-empty list of event types.", details={"known": [*EVENTS, ALL_EVENTS]}
        )
    unknown = sorted(set(events) - {*EVENTS, ALL_EVENTS})
    if unknown:
        raise ValidationFailed(
            f"Unknown event types: {', '.join(unknown)}.", details={"known": [*EVENTS, ALL_EVENTS]}
        )
    return sorted(set(events))


def timeout_check(value: Any) -> float:
    try:
        timeout = float(value)
    except (TypeError, ValueError):
        timeout = -1.0
    if not MIN_TIMEOUT <= timeout <= MAX_TIMEOUT:
        raise ValidationFailed(f"timeout_seconds must be between {MIN_TIMEOUT:g} and {MAX_TIMEOUT:g}.")
    return timeout


def endpoint_create(
    *,
    tenant: Tenant,
    url: str,
    events: Any,
    description: str = "",
    timeout_seconds: Any = 10.0,
    allow_private: bool = False,
    actor: Actor,
) -> tuple[WebhookEndpoint, str]:
    """The new endpoint and its signing secret (shown this once; only its ciphertext is kept)."""
    if WebhookEndpoint.objects.for_tenant(tenant).count() >= MAX_ENDPOINTS_PER_TENANT:
        raise ValidationFailed(f"A tenant has at most {MAX_ENDPOINTS_PER_TENANT} webhook endpoints.")
    secret = secret_new()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            tenant=tenant,
            url=url_check(url, allow_private=allow_private),
            events=events_check(events),
            description=str(description or "")[:200],
            timeout_seconds=timeout_check(timeout_seconds),
            allow_private=allow_private,
            secret_encrypted=encrypt(secret),
            created_by=actor.label[:120],
        )
        audit_record(
            actor=actor,
            action=AuditLog.Action.SETTINGS_CHANGED,
            tenant=tenant,
            target=f"webhook:{endpoint.pk}",
            details={"webhook": "created", "url": endpoint.url, "events": endpoint.events},
        )
    return endpoint, secret


def endpoint_get(*, tenant: Tenant, endpoint_id: str) -> WebhookEndpoint:
    try:
        pk = uuid.UUID(str(endpoint_id))
    except ValueError:
        raise NotFound("No such webhook endpoint.") from None
    endpoint = WebhookEndpoint.objects.for_tenant(tenant).filter(pk=pk).first()
    if endpoint is None:
        raise NotFound("No such webhook endpoint.")
    return endpoint


def endpoint_update(*, endpoint: WebhookEndpoint, changes: dict[str, Any], actor: Actor) -> WebhookEndpoint:
    if "url" in changes:
        endpoint.url = url_check(changes["url"], allow_private=endpoint.allow_private)
    if "events" in changes:
        endpoint.events = events_check(changes["events"])
    if "enabled" in changes:
        if not isinstance(changes["enabled"], bool):
            raise ValidationFailed("enabled must be true or false.")
        endpoint.enabled = changes["enabled"]
    if "description" in changes:
        endpoint.description = str(changes["description"] or "")[:200]
    if "timeout_seconds" in changes:
        endpoint.timeout_seconds = timeout_check(changes["timeout_seconds"])
    with transaction.atomic():
        endpoint.save()
        audit_record(
            actor=actor,
            action=AuditLog.Action.SETTINGS_CHANGED,
            tenant=endpoint.tenant,
            target=f"webhook:{endpoint.pk}",
            details={"webhook": "changed", "fields": sorted(changes)},
        )
    return endpoint


def endpoint_rotate_secret(*, endpoint: WebhookEndpoint, actor: Actor) -> str:
    """A new secret; the old one keeps signing too until the grace period ends."""
    secret = secret_new()
    with transaction.atomic():
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted
        endpoint.previous_secret_expires_at = timezone.now() + rotation_grace()
        endpoint.secret_encrypted = encrypt(secret)
        endpoint.save()
        audit_record(
            actor=actor,
            action=AuditLog.Action.CREDENTIALS_ROTATED,
            tenant=endpoint.tenant,
            target=f"webhook:{endpoint.pk}",
            details={"webhook": "secret rotated"},
        )
    return secret


def endpoint_delete(*, endpoint: WebhookEndpoint, actor: Actor) -> None:
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=AuditLog.Action.SETTINGS_CHANGED,
            tenant=endpoint.tenant,
            target=f"webhook:{endpoint.pk}",
            details={"webhook": "deleted", "url": endpoint.url},
        )
        endpoint.delete()


def secrets_in_use(endpoint: WebhookEndpoint) -> list[str]:
    """The secret, and the one before it while its grace period lasts."""
    current = [decrypt(endpoint.secret_encrypted)]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_encrypted and expires is not None and expires > timezone.now():
        current.append(decrypt(endpoint.previous_secret_encrypted))
    return current


def _subscriptions(tenant_id: Hashable) -> list[tuple[uuid.UUID, tuple[str, ...]]]:
    rows = WebhookEndpoint.objects.filter(tenant_id=str(tenant_id), enabled=True).values_list("id", "events")
    return [(pk, tuple(events)) for pk, events in rows]


# tenant id -> its enabled endpoints and their events; read again after any change.
subscriptions = Versioned("webhook_endpoints", _subscriptions)


def subscriptions_follow_changes() -> None:
    """From ``ready()``: a saved or deleted endpoint makes every process read its tenant's again."""
    invalidate_on_change(WebhookEndpoint, lambda endpoint: subscriptions.bump(str(endpoint.tenant_id)))
