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

        from conversations.llm.health import llm_check
        from conversations.ops import idempotency_prune, stream_buffers_sweep, turns_source
        from somaagent.health import register_check
        from somaagent.housekeeping import register_pruner
        from somaagent.metrics import register_scrape_source

        register_pruner("idempotency", idempotency_prune)
        register_pruner("stream_buffers", stream_buffers_sweep)
        register_scrape_source("turns", turns_source)
        register_check("llm", llm_check, required=False)
