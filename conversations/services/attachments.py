"""Uploading attachments: limits and allowed types from UI settings, sha256, quarantine.

Limits live in the ``uploads`` UI setting (admin → UI settings), e.g.
``{"max_bytes": 10485760, "allowed_mime_types": ["text/*", "image/png"]}``;
missing keys take the defaults below. A rejected upload (413, 415, 400, 404)
writes nothing; an accepted one is stored ``clean`` or ``quarantined``
(conversations.sniff).
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
from typing import Any

from conversations.models import Attachment
from conversations.selectors import session_get
from conversations.sniff import quarantine_reason
from somaagent.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from somaagent.models import Tenant
from somaagent.upload_limits import UploadLimits, upload_limits

log = logging.getLogger(__name__)

FALLBACK_MIME = "application/octet-stream"


def clean_filename(name: str) -> str:
    """The last path component, printable, without characters that break headers or shells."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable() and ch not in '"<>:|?*;').strip(" .")
    return base[:255] or "upload"


def effective_mime(*, declared: str | None, filename: str) -> str:
    mime = (declared or "").split(";", 1)[0].strip().lower()
    if not mime or mime == FALLBACK_MIME or "/" not in mime:
        guessed, _ = mimetypes.guess_type(filename, strict=False)
        mime = (guessed or FALLBACK_MIME).lower()
    return mime[:100]


def too_large(limits: UploadLimits, size: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The file is larger than {limits.max_bytes} bytes.",
        details={"max_bytes": limits.max_bytes, "size": size},
    )


def attachment_create(
    *,
    tenant: Tenant,
    filename: str,
    declared_mime: str | None,
    content: bytes,
    session_id: object | None = None,
    limits: UploadLimits | None = None,
    owner: Any = None,
) -> Attachment:
    """Check and store one upload; raises before writing anything when it is refused."""
    limits = limits or upload_limits()
    if len(content) > limits.max_bytes:
        raise too_large(limits, len(content))
    if not content:
        raise ValidationFailed("The file is empty.", details={"file": "empty"})
    name = clean_filename(filename)
    mime = effective_mime(declared=declared_mime, filename=name)
    if not limits.allows(mime):
        raise UnsupportedMediaType(
            f"Files of type {mime} are not accepted.",
            details={"mime": mime, "allowed": list(limits.allowed_mime_types)},
        )
    session = (
        session_get(tenant=tenant, session_id=session_id, owner=owner)
        if session_id not in (None, "")
        else None
    )
    reason = quarantine_reason(filename=name, declared_mime=mime, content=content)
    if reason:
        log.warning("upload quarantined", extra={"tenant": str(tenant.pk), "mime": mime, "reason": reason})
    return Attachment.objects.create(
        tenant=tenant,
        session=session,
        filename=name,
        mime=mime,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        status=Attachment.Status.QUARANTINED if reason else Attachment.Status.CLEAN,
        quarantine_reason=reason,
        content=content,
    )


def attachment_set_status(*, attachment: Attachment, status: str, reason: str = "") -> Attachment:
    """Staff decision after review (admin actions)."""
    attachment.status = Attachment.Status(status)
    attachment.quarantine_reason = reason if status == Attachment.Status.QUARANTINED else ""
    attachment.save(update_fields=["status", "quarantine_reason"])
    return attachment
