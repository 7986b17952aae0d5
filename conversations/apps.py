from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the outbox topics, finish hooks and UI settings this package owns.
        from conversations import escalation  # noqa: F401
        from conversations.services import summary, turns  # noqa: F401
        from conversations.services.titles import TITLE_TASK, TITLE_TOPIC
        from somaagent.outbox import register_topic

        register_topic(TITLE_TOPIC, task=TITLE_TASK, queue="default")
