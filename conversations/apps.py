from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The outbox topics and UI settings this package owns, registered here and nowhere else.
        from conversations.services.summary import SUMMARY_TASK, SUMMARY_TOPIC
        from conversations.services.titles import TITLE_TASK, TITLE_TOPIC
        from conversations.turn.context_window import context_setting_register
        from conversations.turn.escalation import escalation_setting_register
        from conversations.turn.types import TURN_TASK, TURN_TOPIC
        from somaagent.outbox import register_topic

        register_topic(TURN_TOPIC, task=TURN_TASK, queue="conversation")
        register_topic(SUMMARY_TOPIC, task=SUMMARY_TASK, queue="default")
        register_topic(TITLE_TOPIC, task=TITLE_TASK, queue="default")
        context_setting_register()
        escalation_setting_register()

        from conversations.webhooks.delivery import DEAD_LETTER_TOPIC, webhook_replay
        from conversations.webhooks.emit import DELIVER_TASK, DELIVER_TOPIC
        from conversations.webhooks.endpoints import subscriptions_follow_changes
        from somaagent.outbox import register_replayer

        register_topic(DELIVER_TOPIC, task=DELIVER_TASK, queue="default")
        register_replayer(DEAD_LETTER_TOPIC, webhook_replay)
        subscriptions_follow_changes()

        from conversations.llm.health import llm_check
        from conversations.ops import idempotency_prune, stream_buffers_sweep, turns_source
        from somaagent.health import register_check
        from somaagent.housekeeping import register_pruner
        from somaagent.metrics.scrape import register_scrape_source

        register_pruner("idempotency", idempotency_prune)
        register_pruner("stream_buffers", stream_buffers_sweep)
        register_scrape_source("turns", turns_source)

        from conversations.selectors import session_for
        from documents.session_access import register_session_check

        # A chat's files (documents) belong to whoever may use the chat.
        register_session_check(session_for)
        register_check("llm", llm_check, required=False)
