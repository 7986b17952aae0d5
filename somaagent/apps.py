from django.apps import AppConfig


class SomaAgentConfig(AppConfig):
    name = "somaagent"
    verbose_name = "SomaAgent core"
    default_auto_field = "django.db.models.BigAutoField"
