"""Memory settings (``settings.SOMA.memory``), read from the environment once at start-up.

Pure Python on purpose: ``somaagent.settings`` builds it before Django is ready.
"""

from __future__ import annotations

from dataclasses import dataclass

from somaagent.environment import env, env_float, env_int


@dataclass(frozen=True)
class MemorySettings:
    # Remote SomaBrain-compatible service; empty url = the embedded store.
    url: str
    token: str
    universe: str
    connect_timeout: float
    timeout: float
    # Recall into the turn: bounded in count, size and time.
    recall_top_k: int
    recall_max_chars: int
    recall_snippet_chars: int
    recall_timeout: float
    # Delivery: exponential backoff, a retry budget that is a time span, leases.
    backoff_base_seconds: float
    backoff_max_seconds: float
    retry_budget_seconds: float
    dispatch_lease_seconds: float
    sweep_seconds: float
    replicate_seconds: float

    @property
    def remote(self) -> bool:
        return bool(self.url)

    @property
    def delivery_lease_seconds(self) -> float:
        """How long one delivery attempt may hold a write: longer than its HTTP timeouts."""
        return self.connect_timeout + 2 * self.timeout + 5.0


def memory_settings_from_env() -> MemorySettings:
    return MemorySettings(
        url=env("SOMA_MEMORY_URL").rstrip("/"),
        token=env("SOMA_MEMORY_TOKEN"),
        universe=env("SOMA_MEMORY_UNIVERSE"),
        connect_timeout=env_float("SOMA_MEMORY_CONNECT_TIMEOUT", 3.0),
        timeout=env_float("SOMA_MEMORY_TIMEOUT", 10.0),
        recall_top_k=env_int("SOMA_MEMORY_RECALL_TOP_K", 5),
        recall_max_chars=env_int("SOMA_MEMORY_RECALL_MAX_CHARS", 2000),
        recall_snippet_chars=env_int("SOMA_MEMORY_RECALL_SNIPPET_CHARS", 400),
        recall_timeout=env_float("SOMA_MEMORY_RECALL_TIMEOUT", 2.0),
        backoff_base_seconds=env_float("SOMA_MEMORY_BACKOFF_BASE_SECONDS", 1.0),
        backoff_max_seconds=env_float("SOMA_MEMORY_BACKOFF_MAX_SECONDS", 60.0),
        retry_budget_seconds=env_float("SOMA_MEMORY_RETRY_BUDGET_SECONDS", 24 * 3600.0),
        dispatch_lease_seconds=env_float("SOMA_MEMORY_DISPATCH_LEASE_SECONDS", 30.0),
        sweep_seconds=env_float("SOMA_MEMORY_SWEEP_SECONDS", 1.0),
        replicate_seconds=env_float("SOMA_MEMORY_REPLICATE_SECONDS", 2.0),
    )
