"""Tenant policy data: per-tenant JSON that the Rego policy reads as ``data.tenants[<id>]``.

Staff edit it in admin. Each change bumps ``version``; the server sends the
version it expects with every decision (``context.policy_version``) and the
policy denies when the engine holds another one, so a remote OPA that lost or
missed an update can never decide on stale data (the remote adapter then
pushes the current data and asks again). Each process reads a tenant's data
once per version (``somaagent.versioned``): a change applies everywhere within
about a second.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction

from somaagent.audit import Actor, audit_record
from somaagent.errors import ValidationFailed
from somaagent.models import AuditLog, Persona, PolicyData, Tenant
from somaagent.policy.actions import ACTIONS
from somaagent.policy.adapter import policy_port
from somaagent.policy.types import TenantPolicyData
from somaagent.versioned import Versioned

TENANT_KEYS = {"denied_actions", "denied_tools", "allowed_tools", "approval_tools", "personas"}
PERSONA_KEYS = {"denied_actions", "denied_tools", "approval_tools"}
APPROVAL_RULE_KEYS = {"tool", "when_args", "reason"}
EXAMPLE = {
    "denied_actions": ["memory.write"],
    "denied_tools": ["web_search"],
    "personas": {"<persona id>": {"denied_actions": ["tool.execute"]}},
}


def _string_list(value: Any, path: str, errors: dict[str, str], *, actions: bool = False) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        errors[path] = "must be a list of non-empty strings"
        return
    if actions:
        unknown = sorted(set(value) - set(ACTIONS))
        if unknown:
            errors[path] = f"unknown actions {unknown}; known: {list(ACTIONS)}"


def _approval_rules(value: Any, path: str, errors: dict[str, str]) -> None:
    """A list of tool names ("*": every tool) or {"tool", "when_args"?, "reason"?} objects."""
    if not isinstance(value, list):
        errors[path] = "must be a list of tool names or rule objects"
        return
    for n, rule in enumerate(value):
        where = f"{path}[{n}]"
        if isinstance(rule, str) and rule:
            continue
        if not isinstance(rule, dict):
            errors[where] = 'must be a tool name or {"tool": ..., "when_args": {...}, "reason": ...}'
        elif set(rule) - APPROVAL_RULE_KEYS:
            errors[where] = f"unknown keys {sorted(set(rule) - APPROVAL_RULE_KEYS)}"
        elif not isinstance(rule.get("tool"), str) or not rule["tool"]:
            errors[where] = 'tool must be a tool name or "*"'
        elif not isinstance(rule.get("when_args", {}), dict):
            errors[where] = "when_args must be an object of argument values"
        elif not isinstance(rule.get("reason", ""), str) or len(rule.get("reason", "")) > 300:
            errors[where] = "reason must be a string of at most 300 characters"


def _check_rules(doc: dict[str, Any], path: str, allowed: set[str], errors: dict[str, str]) -> None:
    for name in sorted(set(doc) - allowed):
        errors[f"{path}{name}"] = f"unknown key; allowed: {sorted(allowed)}"
    if "denied_actions" in doc:
        _string_list(doc["denied_actions"], f"{path}denied_actions", errors, actions=True)
    for name in ("denied_tools", "allowed_tools"):
        if name in doc and name in allowed:
            _string_list(doc[name], f"{path}{name}", errors)
    if "approval_tools" in doc:
        _approval_rules(doc["approval_tools"], f"{path}approval_tools", errors)


def policy_document_validate(*, tenant: Tenant, document: Any) -> dict[str, Any]:
    """The document if it is well formed for this tenant; ValidationFailed naming each problem."""
    if not isinstance(document, dict):
        raise ValidationFailed("Policy data must be a JSON object.", details={"example": EXAMPLE})
    errors: dict[str, str] = {}
    _check_rules(document, "", TENANT_KEYS, errors)
    personas = document.get("personas", {})
    if not isinstance(personas, dict):
        errors["personas"] = "must be an object keyed by persona id"
        personas = {}
    own = {str(p) for p in Persona.objects.for_tenant(tenant).values_list("pk", flat=True)}
    for persona_id, rules in personas.items():
        path = f"personas.{persona_id}"
        try:
            known = str(uuid.UUID(persona_id)) in own
        except ValueError:
            known = False
        if not known:
            errors[path] = "not a persona of this tenant"
        elif not isinstance(rules, dict):
            errors[path] = "must be an object"
        else:
            _check_rules(rules, f"{path}.", PERSONA_KEYS, errors)
    if errors:
        raise ValidationFailed("The policy data is not valid.", details=errors)
    personas_norm = {str(uuid.UUID(k)): v for k, v in personas.items()}
    return {**document, **({"personas": personas_norm} if personas_norm else {})}


def _load(tenant_id: Any) -> TenantPolicyData:
    key = str(tenant_id)
    # order_by(): the model's ordering (tenant name) would join tenants on every decision.
    row = PolicyData.objects.filter(tenant_id=key).order_by().values("version", "document").first()
    if row is None:
        return TenantPolicyData(tenant_id=key, version=0, document={})
    return TenantPolicyData(tenant_id=key, version=row["version"], document=row["document"] or {})


# Read on every policy decision (gateway, turn, each tool call): once per version per process.
_cached = Versioned("policy_data", _load)


def policy_data_changed(row: PolicyData) -> None:
    """A tenant's policy data was saved or deleted (connected in ``somaagent.apps``)."""
    _cached.bump(str(row.tenant_id))


def tenant_policy_data(*, tenant_id: Any) -> TenantPolicyData:
    """The tenant's current data (version 0 and empty when staff never set any)."""
    key = str(tenant_id) if tenant_id else ""
    if not key:
        return TenantPolicyData(tenant_id="", version=0, document={})
    return _cached.get(key)


def policy_data_set(*, tenant: Tenant, document: Any, actor: Actor) -> PolicyData:
    """Validate and store the tenant's policy data, audit it, and tell the engine after commit."""
    clean = policy_document_validate(tenant=tenant, document=document)
    with transaction.atomic():
        row, created = (
            PolicyData.objects.select_for_update(of=("self",))
            .order_by()
            .get_or_create(
                tenant=tenant, defaults={"document": clean, "version": 1, "updated_by": actor.label}
            )
        )
        before = None if created else row.document
        if not created:
            row.document = clean
            row.version += 1
            row.updated_by = actor.label[:150]
            row.save(update_fields=["document", "version", "updated_by", "updated_at"])
        audit_record(
            actor=actor,
            action=AuditLog.Action.POLICY_DATA_CHANGED,
            tenant=tenant,
            target=f"policy_data:{tenant.pk}",
            details={"version": row.version, "before": before, "after": clean},
        )
        data = TenantPolicyData(tenant_id=str(tenant.pk), version=row.version, document=clean)
        transaction.on_commit(lambda: _announce(data))
    return row


def _announce(data: TenantPolicyData) -> None:
    policy_port().data_changed(data)
