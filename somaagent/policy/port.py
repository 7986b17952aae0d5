"""The policy port and how an adapter is chosen."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from somaagent.errors import PolicyDenied

log = logging.getLogger(__name__)

ACTIONS = (
    "conversation.send",
    "tool.execute",
    "memory.write",
    "attachments.upload",
    "settings.update",
)


@dataclass(frozen=True)
class PolicyRequest:
    tenant: str
    persona_id: str | None
    action: str
    resource: str
    context: dict[str, Any] = field(default_factory=dict)

    def as_input(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "persona_id": self.persona_id,
            "action": self.action,
            "resource": self.resource,
            "context": self.context,
        }


class PolicyPort(Protocol):
    name: str

    def allows(self, request: PolicyRequest) -> bool:
        """True to allow; raise on any failure to decide (the caller fails closed)."""


class AllowAllPolicy:
    """Interim adapter until the shipped Rego policy is evaluated (identity & policy issue)."""

    name = "allow-all (interim)"

    def allows(self, request: PolicyRequest) -> bool:
        return True


@lru_cache(maxsize=1)
def policy_port() -> PolicyPort:
    return AllowAllPolicy()


def policy_authorize(
    *,
    tenant: str,
    persona_id: str | None,
    action: str,
    resource: str,
    context: dict[str, Any] | None = None,
) -> None:
    """Raise PolicyDenied unless the policy allows the action; fail closed on errors."""
    request = PolicyRequest(
        tenant=str(tenant),
        persona_id=str(persona_id) if persona_id else None,
        action=action,
        resource=resource,
        context=context or {},
    )
    try:
        allowed = policy_port().allows(request)
    except Exception as exc:  # any failure to decide denies
        log.warning("policy engine failed; denying", extra={"action": action, "error": repr(exc)})
        raise PolicyDenied(
            "The policy service could not be reached; the action is denied.",
            code="policy_unavailable",
            details={"action": action},
        ) from exc
    if not allowed:
        raise PolicyDenied(
            f"Policy denies {action} on {resource}.", details={"action": action, "resource": resource}
        )
