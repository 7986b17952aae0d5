"""The limits of a chat's file uploads: the ``uploads`` UI setting, with defaults.

Staff set them in admin → UI settings, e.g.
``{"max_bytes": 10485760, "allowed_mime_types": ["text/*", "image/png"]}``; missing or
invalid keys take the defaults below. The attachment API enforces them
(``conversations.services.attachments``) and the web chat's page shows them, so
they live in the core that both may read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from somaagent.models import UISetting

log = logging.getLogger(__name__)

UPLOADS_SETTING = "uploads"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_ALLOWED = (
    "text/plain",
    "text/markdown",
    "text/csv",
    "application/json",
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
)


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int = DEFAULT_MAX_BYTES
    allowed_mime_types: tuple[str, ...] = DEFAULT_ALLOWED

    def allows(self, mime: str) -> bool:
        for pattern in self.allowed_mime_types:
            if pattern in ("*", "*/*") or pattern == mime:
                return True
            if pattern.endswith("/*") and mime.startswith(pattern[:-1]):
                return True
        return False

    def as_dict(self) -> dict[str, Any]:
        return {"max_bytes": self.max_bytes, "allowed_mime_types": list(self.allowed_mime_types)}


def upload_limits() -> UploadLimits:
    """The ``uploads`` UI setting, or the defaults for whatever it leaves out or gets wrong."""
    row = UISetting.objects.filter(key=UPLOADS_SETTING).first()
    doc = row.document if row is not None and isinstance(row.document, dict) else {}
    limits = UploadLimits()
    max_bytes = doc.get("max_bytes", limits.max_bytes)
    allowed = doc.get("allowed_mime_types", list(limits.allowed_mime_types))
    if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 1:
        log.warning("ui setting uploads.max_bytes is invalid; using the default", extra={"value": max_bytes})
        max_bytes = limits.max_bytes
    if not isinstance(allowed, list) or not all(isinstance(m, str) for m in allowed):
        log.warning("ui setting uploads.allowed_mime_types is invalid; using the default")
        allowed = list(limits.allowed_mime_types)
    return UploadLimits(max_bytes=max_bytes, allowed_mime_types=tuple(m.strip().lower() for m in allowed))
