"""Policy questions asked on behalf of a caller: the context comes from the server's view of them."""

from __future__ import annotations

from typing import Any

from somaagent.identity.principal import Principal
from somaagent.policy.port import policy_authorize


def principal_context(principal: Principal) -> dict[str, Any]:
    """Facts about the caller that the policy may use; none of them comes from the request body."""
    return {
        "actor": principal.label,
        "actor_kind": principal.via,
        "actor_role": principal.role,
        "scopes": sorted(principal.scopes),
    }


def principal_authorize(
    *,
    principal: Principal,
    action: str,
    resource: str,
    persona_id: Any = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """``policy_authorize`` for an API caller in their own tenant; raises PolicyDenied."""
    policy_authorize(
        tenant=principal.tenant,
        persona_id=persona_id,
        action=action,
        resource=resource,
        context={**(extra or {}), **principal_context(principal)},
    )
