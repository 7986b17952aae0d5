"""The product's own settings, typed: ``settings.SOMA`` (``SomaSettings``, built in settings.py)
and ``settings.SOMA_OPS`` (``OpsSettings``: metrics, readiness, flags, housekeeping).

Values come from the environment (``somaagent.environment``); Django's own settings are in
``somaagent/settings.py``, and every variable is named in ``somaagent/settings_catalog.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from somaagent.environment import deployment_mode, env, env_bool, env_float, env_int

DAY = 24 * 3600


@dataclass(frozen=True)
class ToolSettings:
    """Tool calling and the code sandbox (tools package)."""

    search_url: str
    max_calls_per_turn: int
    default_timeout_seconds: float
    queue_grace_seconds: float
    result_max_chars: int
    breaker_failures: int
    breaker_open_seconds: int
    sandbox_mode: str
    sandbox_python: str
    sandbox_uid: int
    sandbox_uid_count: int
    sandbox_cpu_seconds: int
    sandbox_wall_seconds: float
    sandbox_memory_mb: int
    sandbox_max_processes: int
    sandbox_max_open_files: int
    sandbox_max_output_bytes: int
    sandbox_tmpfs_mb: int
    # MCP servers as tool sources (tools/mcp): how long a server's tool list is trusted, and how
    # long a turn waits for a list that is not cached.
    mcp_tools_ttl_seconds: float = 300.0
    mcp_list_timeout_seconds: float = 10.0
    # Tool calls that wait for a person's approval (docs/approvals.md): how long a request stays
    # open before it ends as denied, and whether tenant admins and staff may answer for the user.
    approval_timeout_seconds: float = 600.0
    approval_by_staff: bool = False


@dataclass(frozen=True)
class SomaSettings:
    max_message_chars: int
    max_request_bytes: int
    max_metadata_bytes: int
    history_window_events: int
    turn_lease_seconds: float
    turn_time_limit_seconds: float
    worker_concurrency: int
    web_threads: int
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
    # memory.conf.MemorySettings: built by the project's settings; the core does not import memory.
    memory: Any
    tools: ToolSettings
    # identity, policy, budgets (issue 4)
    opa_url: str
    opa_timeout_seconds: float
    rate_limit_per_minute: int
    login_attempts_per_minute: int  # per account (normalised username), every login path
    login_attempts_per_address_per_minute: int  # per client address, every login path
    budget_completion_reserve_tokens: int
    llm_max_retries: int = 2
    max_streams_per_credential: int = 1000
    llm_retry_after_max_seconds: float = 30.0
    # --- models: context and summaries (issue 7; the local model is wired above the SOMA block) ---
    context_tokens: int = 6000
    summary_batch_messages: int = 200
    # After a chat's first reply the model proposes its title (conversations/services/titles.py).
    title_from_model: bool = True
    # The largest body the web server reads on the upload path (somaagent/project/body_limit.py).
    max_upload_bytes: int = 64 * 1024 * 1024
    max_import_bytes: int = 32 * 1024 * 1024


@dataclass(frozen=True)
class OpsSettings:
    metrics_token: str
    metrics_port: int
    metrics_addr: str
    details_public: bool
    metrics_scrape_cache_seconds: float
    access_log: bool
    readyz_timeout_seconds: float
    readyz_cache_seconds: float
    readyz_required: frozenset[str] | None
    flags_refresh_seconds: float
    housekeeping_seconds: float
    outbox_retention_seconds: int
    idempotency_retention_seconds: int
    replica_retention_seconds: int


def ops_settings_from_env() -> OpsSettings:
    """``settings.SOMA_OPS``, read from the environment."""
    required = env("SOMA_READYZ_REQUIRED")
    return OpsSettings(
        metrics_token=env("SOMA_METRICS_TOKEN"),
        metrics_port=env_int("SOMA_METRICS_PORT", 0),
        metrics_addr=env("SOMA_METRICS_ADDR", "127.0.0.1"),
        # PROD: /readyz shows only ok/not ok per check unless the caller has the metrics token.
        details_public=deployment_mode() != "PROD",
        metrics_scrape_cache_seconds=env_float("SOMA_METRICS_SCRAPE_CACHE_SECONDS", 5.0),
        access_log=env_bool("SOMA_ACCESS_LOG", True),
        readyz_timeout_seconds=env_float("SOMA_READYZ_TIMEOUT_SECONDS", 2.0),
        readyz_cache_seconds=env_float("SOMA_READYZ_CACHE_SECONDS", 2.0),
        readyz_required=frozenset(n.strip() for n in required.split(",") if n.strip()) if required else None,
        flags_refresh_seconds=env_float("SOMA_FLAGS_REFRESH_SECONDS", 3.0),
        housekeeping_seconds=env_float("SOMA_HOUSEKEEPING_SECONDS", 300.0),
        outbox_retention_seconds=env_int("SOMA_OUTBOX_RETENTION_SECONDS", 7 * DAY),
        idempotency_retention_seconds=env_int("SOMA_IDEMPOTENCY_RETENTION_SECONDS", DAY),
        replica_retention_seconds=env_int("SOMA_REPLICA_RETENTION_SECONDS", 30 * DAY),
    )
