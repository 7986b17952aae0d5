"""Prometheus metrics (``GET /metrics``): definitions, helpers to record them, exposition.

With ``PROMETHEUS_MULTIPROC_DIR`` set, every process (web, worker children,
beat) writes its samples to memory-mapped files in that directory and any
process on the host can expose the sum: the web's ``/metrics`` shows the
workers' task metrics too, and a worker can serve them on its own port
(``SOMA_METRICS_PORT``) when it runs on another host. Without it each process
exposes only its own metrics. See docs/operations.md, "Metrics", for the list.
"""

from somaagent.metrics.multiproc import prepare_multiproc_dir

# The directory must exist before the first sample is written (at import of the registry).
prepare_multiproc_dir()

from somaagent.metrics.record import (  # noqa: E402
    budget_rejected,
    housekeeping_pruned,
    http_observed,
    metered_stream,
    policy_denied,
    stream_tracked,
    track_stream,
)

__all__ = [
    "budget_rejected",
    "housekeeping_pruned",
    "http_observed",
    "metered_stream",
    "policy_denied",
    "stream_tracked",
    "track_stream",
]
