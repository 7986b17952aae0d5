from somaagent.models.configuration import LlmCredential, ModelProfile, UISetting
from somaagent.models.outbox import DeadLetter, OutboxMessage
from somaagent.models.tenancy import ApiKey, Membership, Persona, Tenant, TenantScopedQuerySet

__all__ = [
    "ApiKey",
    "DeadLetter",
    "LlmCredential",
    "Membership",
    "ModelProfile",
    "OutboxMessage",
    "Persona",
    "Tenant",
    "TenantScopedQuerySet",
    "UISetting",
]
