from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    name = "documents"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """The ingestion topic of the outbox (background parsing on the default queue), and the
        cached answer to "does this tenant have collections" kept in step with changes."""
        from documents.selectors import collections_follow_changes
        from documents.services.ingest import INGEST_TASK, INGEST_TOPIC
        from somaagent.outbox import register_topic

        register_topic(INGEST_TOPIC, task=INGEST_TASK, queue="default")
        collections_follow_changes()
