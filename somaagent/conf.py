"""The product's own settings (``settings.SOMA``), typed; values come from the environment."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SomaSettings:
    max_message_chars: int
    max_request_bytes: int
    max_metadata_bytes: int
    history_window_events: int
    turn_lease_seconds: float
    turn_max_attempts: int
    turn_redispatch_after_seconds: float
    delta_coalesce_seconds: float
    stream_buffer_ttl_seconds: int
    stream_buffer_maxlen: int
    sse_heartbeat_seconds: float
    outbox_max_age_seconds: int
    outbox_sweep_seconds: float
    turn_sweep_seconds: float
    outbox_sweep_min_age_seconds: float
    llm_base_url: str
    llm_api_key: str
    llm_model: str
    llm_connect_timeout: float
    llm_read_timeout: float
    llm_max_retries: int = 2
    llm_retry_after_max_seconds: float = 30.0
