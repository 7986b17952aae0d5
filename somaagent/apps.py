from django.apps import AppConfig


class SomaAgentConfig(AppConfig):
    name = "somaagent"
    verbose_name = "SomaAgent core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Tracing when OTEL_EXPORTER_OTLP_ENDPOINT is set.
        from somaagent import tracing

        tracing.tracing_setup()
        self._invalidate_caches_on_change()
        from somaagent.health import core_checks_register
        from somaagent.housekeeping import outbox_prune, register_pruner
        from somaagent.metrics.scrape import core_sources_register

        register_pruner("outbox", outbox_prune)
        core_checks_register()
        core_sources_register()

    @staticmethod
    def _invalidate_caches_on_change() -> None:
        """Every process caches these per version (somaagent.versioned): a change is announced."""
        from somaagent.budgets.services import budgets_changed
        from somaagent.identity.apikeys import api_key_changed
        from somaagent.models import (
            ApiKey,
            Budget,
            LlmCredential,
            ModelProfile,
            Persona,
            PolicyData,
            UISetting,
        )
        from somaagent.policy.data import policy_data_changed
        from somaagent.versioned import config_changed, invalidate_on_change

        for model in (ModelProfile, LlmCredential, Persona, UISetting):
            invalidate_on_change(model, lambda _: config_changed())
        invalidate_on_change(Budget, budgets_changed)
        invalidate_on_change(PolicyData, policy_data_changed)
        invalidate_on_change(ApiKey, api_key_changed)
