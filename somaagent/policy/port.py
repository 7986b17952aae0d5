"""``policy_authorize``, which every sensitive action calls, and the decisions behind it.

The adapter (``policy_port``, from ``somaagent.policy.adapter``) is the OPA server
or the shipped Rego evaluated in-process. Any failure to decide — engine unreachable, broken
answer, database error while loading the tenant's policy data — denies with
code ``policy_unavailable``. The ``context`` is built by the server (never
from request fields) and always carries ``policy_version``.
"""

from __future__ import annotations

import logging
from typing import Any

from somaagent.errors import PolicyDenied
from somaagent.metrics.record import policy_denied
from somaagent.policy.actions import ACTIONS
from somaagent.policy.adapter import policy_port
from somaagent.policy.data import tenant_policy_data
from somaagent.policy.types import Decision, PolicyRequest

log = logging.getLogger(__name__)

__all__ = [
    "ACTIONS",
    "Decision",
    "PolicyRequest",
    "policy_authorize",
    "policy_check",
    "policy_decide",
    "policy_port",
]


def _id_of(value: Any) -> str:
    if value is None or value == "":
        return ""
    return str(getattr(value, "pk", value))


def policy_decide(
    *,
    tenant: Any,
    persona_id: Any,
    action: str,
    resource: str,
    context: dict[str, Any] | None = None,
) -> Decision:
    """The decision itself; raises whatever the engine raised."""
    tenant_id = _id_of(tenant)
    data = tenant_policy_data(tenant_id=tenant_id)
    request = PolicyRequest(
        tenant=tenant_id,
        persona_id=_id_of(persona_id) or None,
        action=action,
        resource=resource,
        context={**(context or {}), "policy_version": data.version},
    )
    return policy_port().decide(request, data)


def policy_authorize(
    *,
    tenant: Any,
    persona_id: Any,
    action: str,
    resource: str,
    context: dict[str, Any] | None = None,
) -> None:
    """Raise PolicyDenied unless the policy allows the action; fail closed on errors."""
    policy_check(tenant=tenant, persona_id=persona_id, action=action, resource=resource, context=context)


def policy_check(
    *,
    tenant: Any,
    persona_id: Any,
    action: str,
    resource: str,
    context: dict[str, Any] | None = None,
) -> Decision:
    """The allowing decision (``needs_approval`` says whether a person must approve first);
    PolicyDenied when the policy refuses or cannot be asked (fails closed)."""
    try:
        decision = policy_decide(
            tenant=tenant, persona_id=persona_id, action=action, resource=resource, context=context
        )
    except Exception as exc:  # any failure to decide denies
        log.warning(
            "policy engine failed; denying",
            extra={"action": action, "tenant": _id_of(tenant), "error": repr(exc)[:300]},
        )
        policy_denied(tenant=_id_of(tenant), action=action)
        raise PolicyDenied(
            "The policy service could not be reached; the action is denied.",
            code="policy_unavailable",
            details={"action": action},
        ) from exc
    if not decision.allowed:
        log.info(
            "policy denied",
            extra={"action": action, "tenant": _id_of(tenant), "reasons": list(decision.reasons)},
        )
        policy_denied(tenant=_id_of(tenant), action=action)
        raise PolicyDenied(
            f"Policy denies {action} on {resource}.",
            details={"action": action, "resource": resource, "reasons": list(decision.reasons)},
        )
    return decision
