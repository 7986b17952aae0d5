from django.apps import AppConfig


class FlagsConfig(AppConfig):
    name = "somaagent.flags"
    label = "flags"
    verbose_name = "Feature flags"
    default_auto_field = "django.db.models.BigAutoField"
