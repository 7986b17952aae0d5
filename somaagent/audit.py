"""The audit log: services record every sensitive change with who, when, what and from where.

``Actor`` says who acts: a staff user in the admin, an API key or user through
the API, or an operator on the command line. Record inside the changing
transaction so the entry and the change commit (or roll back) together.
Entries never hold secrets: not keys, not credentials, only their public ids.
"""

from __future__ import annotations

import getpass
import ipaddress
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from somaagent.identity.principal import Principal
from somaagent.models import AuditLog, Tenant


@dataclass(frozen=True)
class Actor:
    label: str
    user_id: int | None = None
    ip: str | None = None
    is_staff: bool = False

    @classmethod
    def system(cls, what: str = "system") -> Actor:
        return cls(label=what)

    @classmethod
    def cli(cls) -> Actor:
        try:
            who = getpass.getuser()
        except (KeyError, OSError):
            who = "unknown"
        return cls(label=f"cli:{who}")


def client_ip(request: HttpRequest | None) -> str | None:
    """The peer address as the ASGI server saw it (run uvicorn with --proxy-headers behind a proxy)."""
    if request is None:
        return None
    raw = (request.META.get("REMOTE_ADDR") or "").strip()
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return None


def actor_from_request(request: HttpRequest) -> Actor:
    """The actor of an admin or API request (a staff user, a key or a token's user)."""
    user = getattr(request, "user", None)
    ip = client_ip(getattr(request, "_request", request))
    if isinstance(user, Principal):
        user_id = getattr(user.user, "pk", None)
        return Actor(label=user.label, user_id=user_id, ip=ip)
    if user is not None and getattr(user, "is_authenticated", False):
        return Actor(
            label=f"user:{user.get_username()}",
            user_id=user.pk,
            ip=ip,
            is_staff=bool(getattr(user, "is_staff", False)),
        )
    return Actor(label="anonymous", ip=ip)


def audit_record(
    *,
    actor: Actor,
    action: str,
    tenant: Tenant | None = None,
    target: str = "",
    details: dict[str, Any] | None = None,
) -> AuditLog:
    return AuditLog.objects.create(
        actor=actor.label[:150],
        actor_user_id=actor.user_id,
        ip=actor.ip,
        tenant=tenant,
        tenant_name=tenant.name if tenant is not None else "",
        action=action,
        target=target[:200],
        details=details or {},
    )
