"""Policy and budget gates of a conversation: at the gateway, in the turn, for uploads.

Gateway (``gateway_admit``, run by ``message_accept`` inside its transaction
before anything is written; not for an idempotent replay): ``conversation.send``
for the persona the turn will really use (an existing session's own persona,
else the requested one; ``message_accept`` has read it, and answered 404 for a
missing one), then the budget's room for the message. Turn (``turn_admit``): the same policy
question again — the data or the session's persona may have changed since —
and a budget reservation of the estimated prompt plus the completion reserve,
settled when the turn ends (``turn_end``). Uploads
(``attachment_upload_authorize``): the ``attachments:write`` scope and
``attachments.upload``. Contexts are built here, never from request fields.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from conversations.llm.port import ModelTarget
from conversations.models import Session
from conversations.services.accept import MessageInput, message_accept
from conversations.services.regenerate import reply_regenerate
from conversations.turn.types import ClaimedTurn
from somaagent.budgets.services import budget_check, budget_reserve
from somaagent.errors import BudgetExceeded, BudgetUnavailable, PolicyDenied
from somaagent.identity import scopes as sc
from somaagent.identity.authentication import require_scope
from somaagent.identity.principal import Principal
from somaagent.metrics.record import budget_rejected
from somaagent.policy import policy_authorize, principal_authorize
from somaagent.policy.actions import ATTACHMENTS_UPLOAD, CONVERSATION_SEND
from somaagent.tokens import tokens_of_chars


def message_admit_accept(
    *, principal: Principal, data: MessageInput, idempotency_key: str | None = None
) -> dict[str, Any]:
    """Accept ``principal``'s message after the gateway's checks (a replay is not checked again)."""
    return message_accept(
        tenant=principal.tenant,
        data=data,
        idempotency_key=idempotency_key,
        created_by=principal.user,
        owner=principal.session_owner,
        admit=lambda session_id, persona_id: gateway_admit(
            principal=principal, message=data.message, session_id=session_id, persona_id=persona_id
        ),
    )


def reply_admit_regenerate(
    *, principal: Principal, session: Session, event_id: object, idempotency_key: str | None = None
) -> dict[str, Any]:
    """Queue another reply to a message of ``principal``'s session after the gateway's checks."""
    return reply_regenerate(
        tenant=principal.tenant,
        session=session,
        event_id=event_id,
        idempotency_key=idempotency_key,
        owner=principal.session_owner,
        admit=lambda message, persona_id: gateway_admit(
            principal=principal, message=message, session_id=session.pk, persona_id=persona_id
        ),
    )


def gateway_admit(
    *, principal: Principal, message: str, session_id: Any = None, persona_id: Any = None
) -> None:
    """Raise PolicyDenied (403), BudgetExceeded (429) or BudgetUnavailable (503) before anything is written.

    ``session_id`` is an existing session of the caller, ``persona_id`` the persona its turn uses.
    """
    tenant = principal.tenant
    resource = f"session:{session_id}" if session_id is not None else "session:new"
    principal_authorize(
        principal=principal,
        action=CONVERSATION_SEND,
        resource=resource,
        persona_id=persona_id,
        extra={"stage": "gateway"},
    )
    try:
        budget_check(tenant_id=tenant.pk, persona_id=persona_id, estimate=tokens_of_chars(len(message)))
    except BudgetExceeded:
        budget_rejected(tenant=tenant.pk, stage="gateway")
        raise


def completion_reserve(target: ModelTarget) -> int:
    """Tokens reserved for the reply: the profile's max_tokens if it sets one, else the setting."""
    for name in ("max_tokens", "max_completion_tokens"):
        value = target.extra.get(name)
        if isinstance(value, int) and value > 0:
            return value
    return settings.SOMA.budget_completion_reserve_tokens


def turn_admit(
    *, claim: ClaimedTurn, messages: list[dict[str, Any]], target: ModelTarget
) -> dict[str, Any] | None:
    """None to go on; else the ``assistant.error`` data that ends the turn."""
    try:
        policy_authorize(
            tenant=claim.tenant_id,
            persona_id=claim.persona_id,
            action=CONVERSATION_SEND,
            resource=f"session:{claim.session_id}",
            context={"stage": "turn", "actor_kind": "worker"},
        )
        prompt = tokens_of_chars(sum(len(str(m.get("content") or "")) for m in messages))
        budget_reserve(
            turn_id=claim.turn_id,
            tenant_id=claim.tenant_id,
            persona_id=claim.persona_id,
            prompt_tokens=prompt,
            completion_tokens=completion_reserve(target),
        )
    except PolicyDenied as exc:
        return {"code": exc.code, "message": exc.message, "retryable": exc.code == "policy_unavailable"}
    except BudgetExceeded as exc:
        return {
            "code": exc.code,
            "message": exc.message,
            "retryable": False,
            "retry_after": exc.retry_after,
        }
    except BudgetUnavailable as exc:
        return _budget_unavailable(exc)
    return None


def _budget_unavailable(exc: BudgetUnavailable) -> dict[str, Any]:
    """The turn's end when its budget cannot be checked (Redis away): retryable."""
    return {"code": exc.code, "message": exc.message, "retryable": True, "retry_after": exc.retry_after}


def round_admit(
    *, claim: ClaimedTurn, messages: list[dict[str, Any]], target: ModelTarget
) -> dict[str, Any] | None:
    """Before each model round after the first (the tool loop): grow the turn's budget
    reservation by this round's estimate. None to go on; else the ``assistant.error`` data."""
    try:
        budget_reserve(
            turn_id=claim.turn_id,
            tenant_id=claim.tenant_id,
            persona_id=claim.persona_id,
            prompt_tokens=tokens_of_chars(sum(len(str(m.get("content") or "")) for m in messages)),
            completion_tokens=completion_reserve(target),
            more=True,
        )
    except BudgetExceeded as exc:  # counted as a rejection when the turn ends (turn_end)
        return {"code": exc.code, "message": exc.message, "retryable": False, "retry_after": exc.retry_after}
    except BudgetUnavailable as exc:
        return _budget_unavailable(exc)
    return None


def attachment_upload_authorize(
    *, principal: Principal, mime: str, size: int, session_id: Any = None
) -> None:
    """Call before storing an upload: Forbidden without ``attachments:write``, PolicyDenied if denied."""
    require_scope(principal, sc.ATTACHMENTS_WRITE)
    principal_authorize(
        principal=principal,
        action=ATTACHMENTS_UPLOAD,
        resource=f"session:{session_id}" if session_id else "attachment",
        extra={"mime": mime, "size": int(size)},
    )
