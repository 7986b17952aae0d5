from somaagent.models.configuration import LlmCredential, ModelProfile, UISetting
from somaagent.models.governance import AuditLog, Budget, PolicyData, TokenUsage
from somaagent.models.outbox import DeadLetter, OutboxMessage
from somaagent.models.sso import OidcIdentity
from somaagent.models.tenancy import (
    ApiKey,
    FirstMembership,
    Membership,
    Persona,
    Tenant,
    TenantScopedQuerySet,
)

__all__ = [
    "ApiKey",
    "AuditLog",
    "Budget",
    "DeadLetter",
    "FirstMembership",
    "LlmCredential",
    "Membership",
    "ModelProfile",
    "OidcIdentity",
    "OutboxMessage",
    "Persona",
    "PolicyData",
    "Tenant",
    "TenantScopedQuerySet",
    "TokenUsage",
    "UISetting",
]
