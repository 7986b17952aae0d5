"""Which models answer: model profiles by role for this deployment mode, else the env default.

A turn gets an ordered chain: the first target answers, the others are its
fallbacks when a provider fails (conversations.llm.fallback). Dialogue turns
use the ``dialogue`` profiles by priority (or the ``SOMA_LLM_*`` default when
there are none); escalated turns put the ``escalation`` profiles first and
the dialogue chain after them; summaries put the ``summary`` profiles first.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from conversations.llm.port import ModelTarget
from somaagent.models import ModelProfile
from somaagent.secrets import decrypt
from somaagent.versioned import config_cache

NO_MODEL_MESSAGE = (
    "No language model is configured. Set SOMA_LLM_BASE_URL (and SOMA_LLM_MODEL, "
    "SOMA_LLM_API_KEY if needed) to an OpenAI-compatible endpoint, or add a 'dialogue' "
    "model profile in the admin, then send the message again."
)

Role = ModelProfile.Role


def target_of(profile: ModelProfile) -> ModelTarget:
    api_key = ""
    if profile.credential_id is not None:
        api_key = decrypt(profile.credential.secret_encrypted)  # type: ignore[union-attr]
    return ModelTarget(
        base_url=profile.base_url,
        model=profile.model,
        api_key=api_key,
        temperature=profile.temperature,
        extra=dict(profile.kwargs or {}),
        profile_id=profile.pk,
        label=f"{profile.role}:{profile.model}#{profile.pk}",
        role=profile.role,
    )


def _load_targets(role: Any) -> list[ModelTarget]:
    profiles = (
        ModelProfile.objects.filter(role=role, deployment_mode=settings.DEPLOYMENT_MODE, enabled=True)
        .select_related("credential")
        .order_by("priority", "id")
    )
    return [target_of(p) for p in profiles]


# Read by every turn: once per configuration version (the admin announces changes).
_targets = config_cache("model_profiles", _load_targets)


def profile_targets(*, role: str) -> list[ModelTarget]:
    """The enabled profiles of ``role`` in this deployment mode, by priority."""
    return list(_targets.get(role))


def default_target() -> ModelTarget | None:
    """The ``SOMA_LLM_*`` endpoint (or the embedded local model's server), if any."""
    base_url = settings.SOMA.llm_base_url
    if not base_url:
        return None
    return ModelTarget(
        base_url=base_url,
        model=settings.SOMA.llm_model,
        api_key=settings.SOMA.llm_api_key,
        label=f"env:{settings.SOMA.llm_model}",
        role=Role.DIALOGUE,
    )


def model_targets(*, role: str = Role.DIALOGUE) -> list[ModelTarget]:
    """The profiles of ``role``; the env default when there are none."""
    targets = profile_targets(role=role)
    default = default_target()
    if default is not None and not targets:
        targets.append(default)
    return targets


def model_chain(*, role: str = Role.DIALOGUE) -> list[ModelTarget]:
    """The ordered targets for a call in ``role``, falling back to the dialogue chain."""
    dialogue = model_targets(role=Role.DIALOGUE)
    if role == Role.DIALOGUE:
        return dialogue
    own = profile_targets(role=role)
    seen = {t.profile_id for t in own}
    return own + [t for t in dialogue if t.profile_id is None or t.profile_id not in seen]
