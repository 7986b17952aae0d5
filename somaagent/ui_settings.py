"""UI settings (global documents staff edit): changes ask the policy (``settings.update``) and are audited."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from somaagent.audit import Actor, audit_record
from somaagent.errors import Forbidden, ValidationFailed
from somaagent.models import AuditLog, UISetting
from somaagent.policy import policy_authorize
from somaagent.policy.actions import SETTINGS_UPDATE
from somaagent.ui_setting_schemas import ui_setting_problems


def ui_setting_check(*, key: str, document: Any, actor: Actor) -> str:
    """The cleaned key if ``actor`` may set this setting; Forbidden, ValidationFailed or PolicyDenied."""
    if not actor.is_staff:
        raise Forbidden("Only staff change UI settings.")
    key = (key or "").strip()
    if not key or len(key) > 100:
        raise ValidationFailed("key must be 1 to 100 characters.", details={"key": "invalid"})
    if not isinstance(document, dict):
        raise ValidationFailed("document must be a JSON object.", details={"document": "invalid"})
    problems = ui_setting_problems(key, document)  # typed keys (ui_setting_schemas): escalation, context
    if problems:
        raise ValidationFailed(
            f"document is not valid: {'; '.join(problems)}", details={"document": problems}
        )
    policy_authorize(
        tenant=None,
        persona_id=None,
        action=SETTINGS_UPDATE,
        resource=f"ui_setting:{key}",
        context={"actor": actor.label, "actor_kind": "user", "actor_role": "staff"},
    )
    return key


def ui_setting_save(*, key: str, document: Any, actor: Actor, setting: UISetting | None = None) -> UISetting:
    """Create or change one setting. Only staff change global settings; the policy has the last word."""
    key = ui_setting_check(key=key, document=document, actor=actor)
    with transaction.atomic():
        row = setting or UISetting.objects.select_for_update().filter(key=key).first() or UISetting(key=key)
        before = (
            None
            if row.pk is None
            else UISetting.objects.filter(pk=row.pk).values_list("document", flat=True).first()
        )
        row.key = key
        row.document = document
        row.save()
        audit_record(
            actor=actor,
            action=AuditLog.Action.SETTINGS_CHANGED,
            target=f"ui_setting:{key}",
            details={"before": before, "after": document},
        )
    return row
