from django.apps import AppConfig


class ToolsConfig(AppConfig):
    name = "tools"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the outbox topic, the built-in tools and the readiness checks.
        from somaagent.outbox import register_topic
        from tools.execute import TOOL_TOPIC
        from tools.health import register

        register_topic(TOOL_TOPIC, task="tools.run", queue="tools")
        from tools.builtin import builtins_register

        builtins_register()
        register()

        from somaagent.versioned import config_changed, invalidate_on_change
        from tools.models import McpServer, ToolSetting

        invalidate_on_change(ToolSetting, lambda _: config_changed())
        invalidate_on_change(McpServer, lambda _: config_changed())
