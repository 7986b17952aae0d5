from django.apps import AppConfig


class MemoryConfig(AppConfig):
    name = "memory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Memory's dead-letter replay, /readyz check, metrics and pruners (session deletion
        calls ``memory_forget_session`` itself)."""
        from memory.health import memory_check
        from memory.services.deadletters import memory_replication_replay, memory_write_replay
        from memory.services.delivery import WRITE_TOPIC
        from memory.services.replication import REPLICATE_TOPIC
        from somaagent.health import register_check
        from somaagent.outbox import register_replayer

        register_replayer(WRITE_TOPIC, memory_write_replay)
        register_replayer(REPLICATE_TOPIC, memory_replication_replay)
        register_check("memory", memory_check, required=False)

        from memory.ops import memory_metrics, memory_replica_prune, memory_wal_prune, memory_writes_prune
        from somaagent.housekeeping import register_pruner
        from somaagent.metrics.scrape import register_scrape_source

        register_scrape_source("memory", memory_metrics)
        register_pruner("memory_replica", memory_replica_prune)
        register_pruner("memory_wal", memory_wal_prune)
        register_pruner("memory_writes", memory_writes_prune)
