"""The memory port: what SomaAgent needs from a memory service (remember, recall, forget).

Two adapters implement it (``memory.adapters``): the remote SomaBrain-compatible
HTTP service and the embedded store in our own database. Failures are one of
two kinds: ``MemoryUnavailable`` (try again later, maybe after ``retry_after``
seconds) and ``MemoryRejected`` (the service refuses this request; retrying the
same request cannot help).
"""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.db import transaction

DEFAULT_PERSONA = "default"


API_OWNER = "api"


def namespace_for(*, persona_id: uuid.UUID | str | None, owner: object = None, shared: bool = False) -> str:
    """Memories are scoped by tenant (a separate field), then by the namespace: the persona and,
    unless the persona shares its memory tenant-wide (``shared``), the session's owner — the
    member who started it (``owner``: a user id), or every API-key session together."""
    persona = f"persona:{persona_id or DEFAULT_PERSONA}"
    if shared and persona_id:
        return persona
    return f"{persona}:owner:{owner if owner is not None else API_OWNER}"


@dataclass(frozen=True)
class Remember:
    tenant: str
    namespace: str
    key: str
    value: dict[str, Any]
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Forget:
    """Forget every memory of one session inside a namespace."""

    tenant: str
    namespace: str
    session_id: str
    key: str


@dataclass(frozen=True)
class RecallQuery:
    tenant: str
    namespace: str
    query: str
    top_k: int
    timeout: float
    session_id: str | None = None


@dataclass(frozen=True)
class MemoryHit:
    key: str
    score: float
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        for name in ("text", "content", "message"):
            value = self.payload.get(name)
            if isinstance(value, str):
                return value
        return ""


class MemoryServiceError(Exception):
    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class MemoryUnavailable(MemoryServiceError):
    """Retryable: 5xx, 408, 429, timeouts, refused or dropped connections."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class MemoryRejected(MemoryServiceError):
    """Not retryable: the service answered 4xx (other than 408/429) to this request."""


class MemoryPort(Protocol):
    name: str

    def remember(self, item: Remember) -> None:
        """Store one memory; storing the same ``key`` again changes nothing."""

    def recall(self, query: RecallQuery) -> list[MemoryHit]:
        """The ``top_k`` memories most relevant to ``query``, best first."""

    def forget(self, request: Forget) -> int:
        """Forget a session's memories; returns how many went (when the service says)."""


def store_transaction(port: MemoryPort) -> AbstractContextManager[Any]:
    """One transaction around a call to the store and the caller's own statements about it when
    the store is this process's database (the embedded one: ``shares_database``); a remote
    service's call is HTTP, which no transaction should span."""
    return transaction.atomic() if getattr(port, "shares_database", False) else nullcontext()
