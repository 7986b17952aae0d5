"""The ``memory`` detail of ``/readyz`` (not required: chats go on while memory is down)."""

from __future__ import annotations

from typing import Any

from memory.selectors import memory_outbox_depth, memory_replication_lag_seconds
from somaagent.models import DeadLetter


def memory_check() -> dict[str, Any]:
    from django.conf import settings

    return {
        "adapter": "remote" if settings.SOMA.memory.remote else "embedded",
        "outbox_depth": memory_outbox_depth(),
        "replication_lag_seconds": round(memory_replication_lag_seconds(), 3),
        "dead_letters": DeadLetter.objects.filter(
            topic__startswith="memory.", replayed_at__isnull=True
        ).count(),
    }
