from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    name = "documents"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """The ingestion topic of the outbox (background parsing on the default queue), the
        housekeeping step that takes back documents stuck in processing, and the cached answer
        to "does this tenant have collections" kept in step with changes."""
        from documents.selectors import collections_follow_changes
        from documents.services.ingest import INGEST_TASK, INGEST_TOPIC, stuck_documents_sweep
        from somaagent.housekeeping import register_pruner
        from somaagent.outbox import register_topic

        register_topic(INGEST_TOPIC, task=INGEST_TASK, queue="default")
        register_pruner("documents_stuck", stuck_documents_sweep)
        collections_follow_changes()
