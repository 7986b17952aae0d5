"""What the policy port takes and answers, and the tenant data it decides with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class TenantPolicyData:
    """A tenant's policy data at one version (``somaagent.policy.data`` reads and writes it)."""

    tenant_id: str
    version: int
    document: dict[str, Any]

    def as_data(self) -> dict[str, Any]:
        """What the policy sees under ``data.tenants[<tenant id>]``."""
        return {**self.document, "version": self.version}


class PolicyEngineError(Exception):
    """The policy engine could not decide (unreachable, broken answer); the caller denies."""


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

    @classmethod
    def probe(cls) -> PolicyRequest:
        return cls(tenant="", persona_id=None, action="conversation.send", resource="probe")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reasons: tuple[str, ...] = ()
    # Allowed, but only once a person approves (tool calls): why, from ``data.soma.approval``.
    approval: tuple[str, ...] = ()

    @property
    def needs_approval(self) -> bool:
        return self.allowed and bool(self.approval)


class PolicyPort(Protocol):
    name: str

    def decide(self, request: PolicyRequest, data: TenantPolicyData) -> Decision:
        """The decision for ``request`` given the tenant's current policy data; raise if undecidable."""

    def data_changed(self, data: TenantPolicyData) -> None:
        """The tenant's policy data changed (after commit); remote engines get it pushed."""
