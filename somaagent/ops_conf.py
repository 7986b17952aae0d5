"""Operations settings (``settings.SOMA_OPS``): metrics, readiness, flags, housekeeping."""

from __future__ import annotations

from dataclasses import dataclass

from somaagent.config import deployment_mode, env, env_bool, env_float, env_int

DAY = 24 * 3600


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


def load() -> OpsSettings:
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
