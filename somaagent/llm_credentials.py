"""The model providers' credentials (model profiles name them; callers' identity is ``identity/``):
stored only encrypted (Fernet), never returned, logged or audited in clear."""

from __future__ import annotations

from cryptography.fernet import InvalidToken
from django.db import transaction

from somaagent.audit import Actor, audit_record
from somaagent.errors import ValidationFailed
from somaagent.models import AuditLog, LlmCredential
from somaagent.secrets import encrypt, rotate


def llm_credential_save(*, credential: LlmCredential, secret: str | None, actor: Actor) -> LlmCredential:
    """Save name/provider and, when given, a new secret (encrypted with the newest key)."""
    created = credential.pk is None
    if created and not secret:
        raise ValidationFailed("A new credential needs its secret.", details={"secret": "required"})
    with transaction.atomic():
        if secret:
            credential.secret_encrypted = encrypt(secret)
        credential.save()
        audit_record(
            actor=actor,
            action=AuditLog.Action.CREDENTIAL_UPDATED,
            target=f"credential:{credential.name}",
            details={"created": created, "secret_changed": bool(secret), "provider": credential.provider},
        )
    return credential


class RotationFailed(Exception):
    def __init__(self, names: list[str]) -> None:
        super().__init__(f"cannot decrypt with any configured key: {', '.join(names)}")
        self.names = names


def llm_credentials_rotate(*, actor: Actor) -> int:
    """Re-encrypt every credential with the newest key, all or none; returns how many."""
    with transaction.atomic():
        credentials = list(LlmCredential.objects.select_for_update().order_by("pk"))
        failed: list[str] = []
        for credential in credentials:
            try:
                credential.secret_encrypted = rotate(credential.secret_encrypted)
            except InvalidToken:
                failed.append(credential.name)
        if failed:
            raise RotationFailed(failed)
        for credential in credentials:
            credential.save(update_fields=["secret_encrypted", "updated_at"])
        audit_record(
            actor=actor,
            action=AuditLog.Action.CREDENTIALS_ROTATED,
            target="credentials",
            details={"count": len(credentials), "names": [c.name for c in credentials]},
        )
    return len(credentials)
