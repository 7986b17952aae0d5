from django.apps import AppConfig


class ToolsConfig(AppConfig):
    name = "tools"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the outbox topic, the built-in tools and the readiness checks.
        from tools import dispatch  # noqa: F401
        from tools.health import register
        from tools.registry import load_builtins

        load_builtins()
        register()

        from somaagent.versioned import config_changed, invalidate_on_change
        from tools.models import ToolSetting

        invalidate_on_change(ToolSetting, lambda _: config_changed())
