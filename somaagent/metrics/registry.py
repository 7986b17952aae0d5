"""Every metric SomaAgent records in its processes (scrape-time gauges are in ``scrape``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
TASK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
TPS_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000)

HTTP_DURATION = Histogram(
    "soma_http_request_duration_seconds",
    "Time to the response headers, by resolved route pattern, method and status.",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)

TASK_RUNS = Counter("soma_task_runs_total", "Celery task executions started.", ["task"])
TASK_FAILURES = Counter(
    "soma_task_failures_total", "Celery task executions that raised.", ["task", "exception"]
)
TASK_RETRIES = Counter("soma_task_retries_total", "Celery task retries requested.", ["task"])
TASK_DURATION = Histogram(
    "soma_task_duration_seconds",
    "Celery task run time, by final state.",
    ["task", "state"],
    buckets=TASK_BUCKETS,
)

LLM_TTFT = Histogram(
    "soma_llm_time_to_first_token_seconds",
    "From opening the model stream to its first text.",
    ["model"],
    buckets=TTFT_BUCKETS,
)
LLM_TPS = Histogram(
    "soma_llm_tokens_per_second",
    "Completion tokens per second of a model stream, from its first text to its end.",
    ["model"],
    buckets=TPS_BUCKETS,
)
LLM_TOKENS = Counter("soma_llm_completion_tokens_total", "Completion tokens received.", ["model"])
LLM_STREAMS = Counter(
    "soma_llm_streams_total", "Model streams by outcome (ok, error, stopped).", ["model", "outcome"]
)

TURNS_FINISHED = Counter(
    "soma_turns_finished_total",
    "Turns ended, by terminal event (final, error, cancelled) and error code.",
    ["outcome", "code"],
)

BUDGET_REJECTIONS = Counter(
    "soma_budget_rejections_total",
    "Requests or turns refused for lack of budget, by tenant and stage (gateway, turn).",
    ["tenant", "stage"],
)
POLICY_DENIALS = Counter(
    "soma_policy_denials_total", "Actions the policy denied, by tenant and action.", ["tenant", "action"]
)

ACTIVE_STREAMS = Gauge(
    "soma_active_streams",
    "Clients following a session stream now, by transport (sse, websocket).",
    ["transport"],
    multiprocess_mode="livesum",
)
STREAMS_OPENED = Counter("soma_streams_opened_total", "Session streams opened.", ["transport"])

HOUSEKEEPING_PRUNED = Counter(
    "soma_housekeeping_pruned_total", "Rows or keys removed by housekeeping, by kind.", ["kind"]
)
