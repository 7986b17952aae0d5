from django.apps import AppConfig


class SomaAgentConfig(AppConfig):
    name = "somaagent"
    verbose_name = "SomaAgent core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Operations: turn metrics hooks, and tracing when OTEL_EXPORTER_OTLP_ENDPOINT is set.
        from somaagent import tracing
        from somaagent.metrics import hooks

        hooks.install()
        tracing.tracing_setup()
