"""Which model answers: the dialogue model profile for this deployment mode, else the env default."""

from __future__ import annotations

from django.conf import settings

from conversations.llm.port import ModelTarget
from somaagent.models import ModelProfile

NO_MODEL_MESSAGE = (
    "No language model is configured. Set SOMA_LLM_BASE_URL (and SOMA_LLM_MODEL, "
    "SOMA_LLM_API_KEY if needed) to an OpenAI-compatible endpoint, or add a 'dialogue' "
    "model profile in the admin, then send the message again."
)


def _target_of(profile: ModelProfile) -> ModelTarget:
    api_key = ""
    if profile.credential_id is not None:
        from somaagent.secrets import decrypt

        api_key = decrypt(profile.credential.secret_encrypted)  # type: ignore[union-attr]
    return ModelTarget(
        base_url=profile.base_url,
        model=profile.model,
        api_key=api_key,
        temperature=profile.temperature,
        extra=dict(profile.kwargs or {}),
        profile_id=profile.pk,
        label=f"{profile.role}:{profile.model}",
    )


def model_targets(*, role: str = ModelProfile.Role.DIALOGUE) -> list[ModelTarget]:
    """The ordered list of models to try for ``role`` (first answers, the rest fall back)."""
    profiles = (
        ModelProfile.objects.filter(role=role, deployment_mode=settings.DEPLOYMENT_MODE, enabled=True)
        .select_related("credential")
        .order_by("priority", "id")
    )
    targets = [_target_of(p) for p in profiles]
    base_url = settings.SOMA.llm_base_url
    if base_url and not targets:
        targets.append(
            ModelTarget(
                base_url=base_url,
                model=settings.SOMA.llm_model,
                api_key=settings.SOMA.llm_api_key,
                label="env",
            )
        )
    return targets
