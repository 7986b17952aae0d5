"""Admin: browse the write outbox, the WAL, the replica and the embedded store (read-only).

Filter by tenant and state in the sidebar; by session with the search box
(an exact session id) or ``?session_id=<uuid>`` in the address. Dead writes
are replayed from the dead letters (SomaAgent core > Dead letters).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from memory.models import MemoryItem, MemoryReplica, MemoryWal, MemoryWrite
from somaagent.admin_base import ReadOnlyAdmin


class SessionFilterable(ReadOnlyAdmin):
    search_fields = ["=session_id"]

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        return lookup in ("session_id", "session_id__exact") or super().lookup_allowed(lookup, value, request)


@admin.register(MemoryWrite)
class MemoryWriteAdmin(SessionFilterable):
    list_display = [
        "id",
        "op",
        "state",
        "tenant",
        "session_id",
        "retry_count",
        "next_attempt_at",
        "created_at",
        "delivered_at",
    ]
    list_filter = ["state", "op", "tenant"]
    search_fields = ["=session_id", "=idempotency_key", "=event_id"]
    date_hierarchy = "created_at"
    list_select_related = ["tenant"]


@admin.register(MemoryWal)
class MemoryWalAdmin(SessionFilterable):
    list_display = ["id", "op", "state", "role", "tenant", "session_id", "wal_timestamp", "replicated_at"]
    list_filter = ["state", "op", "tenant"]
    search_fields = ["=session_id", "=event_id"]
    date_hierarchy = "wal_timestamp"
    list_select_related = ["tenant"]


@admin.register(MemoryReplica)
class MemoryReplicaAdmin(SessionFilterable):
    list_display = ["id", "role", "tenant", "session_id", "persona_id", "snippet", "wal_timestamp"]
    list_filter = ["role", "tenant"]
    search_fields = ["=session_id", "=event_id", "=persona_id"]
    date_hierarchy = "wal_timestamp"
    list_select_related = ["tenant"]

    @admin.display(description="text")
    def snippet(self, obj: MemoryReplica) -> str:
        text = str((obj.payload or {}).get("text", ""))
        return text if len(text) <= 80 else text[:79] + "…"


@admin.register(MemoryItem)
class MemoryItemAdmin(SessionFilterable):
    list_display = ["id", "tenant", "namespace", "session_id", "short_text", "created_at"]
    list_filter = ["tenant", "namespace"]
    search_fields = ["=session_id", "=key", "text"]
    list_select_related = ["tenant"]

    @admin.display(description="text")
    def short_text(self, obj: MemoryItem) -> Any:
        return obj.text if len(obj.text) <= 80 else obj.text[:79] + "…"
