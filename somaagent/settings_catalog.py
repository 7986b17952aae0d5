"""Every environment variable SomaAgent reads, in one list: the source of docs/configuration.md.

Each ``Variable`` says its name, its default as the code has it, its type and what it does;
``SECTIONS`` orders them for the reader. ``python -m somaagent.settings_doc`` prints the
document and ``--write`` writes it. ``tests/somaagent/test_settings_catalog.py`` fails when
the code reads a variable missing here, when a literal default in the code differs from the
one here, and when docs/configuration.md is not what the generator prints. Values are still
read where they are used (``somaagent.environment.env``, ``env_int``, …); this module only names them.
"""

# ruff: noqa: E501  (one variable a line: the catalog reads as the table it becomes)
from __future__ import annotations

from dataclasses import dataclass

TEXT, INTEGER, NUMBER, BOOLEAN = "text", "integer", "number", "boolean"


@dataclass(frozen=True)
class Variable:
    name: str
    default: str  # the code's default as the environment would spell it; "" when unset means off/none
    meaning: str
    kind: str = TEXT
    # What "unset" means when that is more than the default's value (e.g. "generated into var/ in DEV").
    unset: str = ""
    # The default is worked out at start-up (deployment mode, another variable): not a literal to check.
    computed: bool = False


@dataclass(frozen=True)
class Section:
    title: str
    about: str
    variables: tuple[Variable, ...]


V = Variable

# fmt: off
SECTIONS: tuple[Section, ...] = (
    Section(
        "Deployment and HTTPS",
        "PROD refuses to start without the ones that say *required in PROD* (see above).",
        (
            V("SOMA_DEPLOYMENT_MODE", "DEV", "`DEV`, `STAGING` or `PROD`; model profiles of this mode are used"),
            V("DJANGO_SECRET_KEY", "", "Django's secret key, also the JWT signing key; required in PROD", unset="generated into `var/` (DEV, STAGING)"),
            V("DJANGO_DEBUG", "", "Django's debug pages (PROD refuses it on)", BOOLEAN, unset="on in DEV, off otherwise", computed=True),
            V("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]", "comma-separated hosts this deployment serves (`*` refused in PROD); required in PROD"),
            V("CSRF_TRUSTED_ORIGINS", "", "comma-separated origins trusted for CSRF (e.g. `https://chat.example.com` behind a proxy)"),
            V("SOMA_FERNET_KEYS", "", "comma-separated Fernet keys for stored secrets, newest first (rotation); required outside DEV", unset="generated into `var/` in DEV only"),
            V("SOMA_BEHIND_TLS_PROXY", "0", "`1`: a TLS-terminating proxy in front sets `X-Forwarded-Proto` (and drops the client's), so Django's `SECURE_PROXY_SSL_HEADER` trusts it; `0`: the server speaks TLS itself. Required in PROD (unset is refused there)", BOOLEAN),
            V("SOMA_HSTS_SECONDS", "", "`Strict-Transport-Security` max-age on HTTPS responses (PROD refuses less than a day)", INTEGER, unset="PROD: 31536000; else 0", computed=True),
            V("SOMA_VAR_DIR", "", "where the embedded database, Redis socket, generated keys and dev credentials live", unset="`var/` in the checkout", computed=True),
        ),
    ),
    Section(
        "Database, Redis and broker",
        "Unset `DATABASE_URL` and `REDIS_URL` mean the embedded defaults (SQLite and an embedded Redis server).",
        (
            V("DATABASE_URL", "", "database, e.g. `postgres://user:pass@host:5432/soma`", unset="SQLite `var/somaagent.sqlite3` (WAL)"),
            V("SOMA_SQLITE_PATH", "", "the embedded SQLite database file", unset="`var/somaagent.sqlite3`", computed=True),
            V("SOMA_DB_POOL_MIN_SIZE", "1", "PostgreSQL connections each process keeps open (see [Database connections](operations.md#database-connections))", INTEGER),
            V("SOMA_DB_POOL_MAX_SIZE", "20", "most PostgreSQL connections one process opens; size `max_connections` for this × processes", INTEGER),
            V("SOMA_DB_POOL_TIMEOUT_SECONDS", "", "how long a request waits for a pooled connection while the database is busy", NUMBER, unset="10 on the web, 30 in a worker", computed=True),
            V("SOMA_DB_CONNECT_TIMEOUT_SECONDS", "2", "a new PostgreSQL connection gives up after this", INTEGER),
            V("SOMA_DB_SERVER_SIDE_BINDING", "1", "send query parameters apart from the SQL (PostgreSQL binds them) instead of quoting them into it", BOOLEAN),
            V("SOMA_DB_PREPARE_THRESHOLD", "5", "a statement run this many times on a connection is prepared there; 0 never prepares (PgBouncer in transaction mode before 1.21)", INTEGER),
            V("SOMA_ASYNC_DB_THREADS", "8", "threads (and so at most connections) for database reads of SSE/WebSocket streams", INTEGER),
            V("REDIS_URL", "", "cache, stream buffers, channel layer, broker unless overridden", unset="embedded Redis on `var/redis.sock`"),
            V("SOMA_EMBEDDED_REDIS_DB", "0", "database number used on the embedded Redis server", INTEGER),
            V("SOMA_REDIS_PREFIX", "soma:", "prefix of every Redis key SomaAgent writes (several deployments can share one Redis)"),
            V("CELERY_BROKER_URL", "", "broker override (`amqp://guest:guest@host:5672//` for RabbitMQ)", unset="`REDIS_URL`"),
            V("SOMA_CACHE_FRESH_SECONDS", "1", "how long a process trusts a cached API key, policy data or budget before asking Redis whether its version moved", NUMBER),
        ),
    ),
    Section(
        "Processes and `make run`",
        "Read by the Procfile, `make run` (`somaagent/project/devrun`) and the settings; the `make` variables are in the README.",
        (
            V("PORT", "8000", "the web's port under `make run`, the Procfile, the Docker image, compose and the k8s config map", INTEGER),
            V("TOOLS_CONCURRENCY", "8", "threads of the `tools` worker (Procfile)", INTEGER),
            V("FLOWER_PORT", "5555", "Flower's port (Procfile, `make run FLOWER=1`)", INTEGER),
            V("DJANGO_SETTINGS_MODULE", "somaagent.settings", "Django's settings module (set by `manage.py`, the ASGI app and the Celery app when unset)"),
            V("SOMA_WORKER_CONCURRENCY", "500", "threads of a worker: the most tasks (turns) one worker process runs at once", INTEGER),
            V("SOMA_WEB_THREADS", "16", "threads of the web process for sync views (the API, admin, pages): the most such requests it serves at once; more wait their turn", INTEGER),
            V("LOG_LEVEL", "INFO", "root log level; `DEBUG` also shows the sweeps' runs that did nothing"),
        ),
    ),
    Section(
        "Turns, streams and the outbox",
        "",
        (
            V("SOMA_TURN_LEASE_SECONDS", "15", "a running turn's lease; renewed every third of it", NUMBER),
            V("SOMA_TURN_TIME_LIMIT_SECONDS", "840", "longest a turn may run; past it the turn ends with `assistant.error` `turn_timeout`", NUMBER),
            V("SOMA_TURN_MAX_ATTEMPTS", "3", "runs of a turn (restarts after a lost worker) before it ends with `worker_lost`", INTEGER),
            V("SOMA_TURN_REDISPATCH_AFTER_SECONDS", "30", "a queued turn nobody picked up is dispatched again after this; also the grace after an expired lease", NUMBER),
            V("SOMA_TURN_SWEEP_SECONDS", "5", "beat interval of the turn-lease sweep", NUMBER),
            V("SOMA_DELTA_COALESCE_SECONDS", "0.05", "longest wait before buffered tokens go out as one delta", NUMBER),
            V("SOMA_HISTORY_WINDOW_EVENTS", "40", "messages of history sent to the model", INTEGER),
            V("SOMA_STREAM_BUFFER_TTL_SECONDS", "3600", "how long a session's live buffer (deltas) is kept", INTEGER),
            V("SOMA_STREAM_BUFFER_MAXLEN", "20000", "entries a session's live buffer keeps (approximately)", INTEGER),
            V("SOMA_SSE_HEARTBEAT_SECONDS", "15", "heartbeat of SSE and WebSocket streams; also how often an open stream re-checks its credentials", NUMBER),
            V("SOMA_OUTBOX_SWEEP_SECONDS", "2", "beat interval of the outbox sweep", NUMBER),
            V("SOMA_OUTBOX_SWEEP_MIN_AGE_SECONDS", "2", "the sweep publishes only rows older than this (younger ones are the publisher thread's)", NUMBER),
            V("SOMA_OUTBOX_MAX_AGE_SECONDS", "86400", "an outbox row that still cannot be published after this is dead-lettered", INTEGER),
            V("SOMA_OUTBOX_MARK_INTERVAL_SECONDS", "0.2", "how often the marker thread records what the publisher thread sent", NUMBER),
        ),
    ),
    Section(
        "Input limits",
        "Above them the request is refused with 413 and the standard error envelope.",
        (
            V("SOMA_MAX_MESSAGE_CHARS", "32000", "characters of one message", INTEGER),
            V("SOMA_MAX_REQUEST_BYTES", "262144", "bytes of a JSON request body", INTEGER),
            V("SOMA_MAX_METADATA_BYTES", "16384", "bytes of a message's `metadata` (as JSON)", INTEGER),
            V("SOMA_MAX_IMPORT_BYTES", "33554432", "the largest body the web server reads on `POST /v1/import`", INTEGER),
            V("SOMA_MAX_UPLOAD_BYTES", "67108864", "the largest body the web server reads on `POST /v1/attachments` (the `uploads` UI setting's `max_bytes` is checked within it; 64 KiB of multipart envelope on top)", INTEGER),
        ),
    ),
    Section(
        "Models",
        "Model profiles in the admin come first; these are the default endpoint and the limits of every model call ([models.md](models.md)).",
        (
            V("SOMA_LLM_BASE_URL", "", "default OpenAI-compatible endpoint (Ollama, OpenAI, …)", unset="the embedded local model when installed, else `no_model_configured`", computed=True),
            V("SOMA_LLM_API_KEY", "", "its bearer token"),
            V("SOMA_LLM_MODEL", "", "its model name", unset="`default` (the local model's alias with the local model)", computed=True),
            V("SOMA_LLM_CONNECT_TIMEOUT", "5", "model connect timeout, seconds", NUMBER),
            V("SOMA_LLM_READ_TIMEOUT", "60", "longest silence within a reply, seconds", NUMBER),
            V("SOMA_LLM_MAX_RETRIES", "2", "retries of one model (a call that failed before any text) before falling back", INTEGER),
            V("SOMA_LLM_RETRY_AFTER_MAX_SECONDS", "30", "longest `Retry-After` waited for", NUMBER),
            V("SOMA_LOCAL_LLM", "1", "use the embedded local model when installed and no endpoint is set", BOOLEAN),
            V("SOMA_LOCAL_LLM_PORT", "8008", "the embedded local model's port", INTEGER),
            V("SOMA_CONTEXT_TOKENS", "6000", "prompt budget (estimated tokens) unless the `context` UI setting sets one", INTEGER),
            V("SOMA_SUMMARY_BATCH_MESSAGES", "200", "most messages one summary run reads", INTEGER),
            V("SOMA_TITLE_FROM_MODEL", "1", "after a chat's first reply, ask the model for its title (`0`: keep the first words, send them to no model)", BOOLEAN),
            V("SOMA_MODEL_PRICES", "", "JSON object of model → `{\"prompt\": USD, \"completion\": USD}` per million tokens, for the usage page's estimated cost", unset="every model costs $0"),
        ),
    ),
    Section(
        "Identity, policy, rate limits and budgets",
        "See [security.md](security.md).",
        (
            V("SOMA_JWT_ACCESS_SECONDS", "300", "lifetime of an access token", INTEGER),
            V("SOMA_JWT_REFRESH_SECONDS", "86400", "lifetime of a refresh token", INTEGER),
            V("SOMA_OPA_URL", "", "remote policy engine (OPA), http(s)", unset="the embedded Rego engine"),
            V("SOMA_OPA_TIMEOUT_SECONDS", "2", "its timeout", NUMBER),
            V("SOMA_RATE_LIMIT_PER_MINUTE", "600", "requests per key per minute (0 = none)", INTEGER),
            V("SOMA_MAX_STREAMS_PER_CREDENTIAL", "1000", "streams (SSE, WebSocket, OpenAI-door completions) one API key or user may hold open at once, across all web processes; over it is 429 `too_many_streams` (0 = no cap)", INTEGER),
            V("SOMA_LOGIN_ATTEMPTS_PER_MINUTE", "10", "login attempts per account (username stripped and case-folded) per minute, `/v1/auth/token`, `/login/` and `/admin/login/` together", INTEGER),
            V("SOMA_LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE", "30", "login attempts per client address per minute, whatever the username, all login paths together", INTEGER),
            V("SOMA_BUDGET_COMPLETION_RESERVE_TOKENS", "1024", "completion tokens reserved per model call", INTEGER),
        ),
    ),
    Section(
        "Single sign-on (OpenID Connect)",
        "See [security.md](security.md#single-sign-on-openid-connect).",
        (
            V("SOMA_OIDC_ISSUER", "", "the provider's issuer URL (https in PROD); discovery at `<issuer>/.well-known/openid-configuration`", unset="single sign-on off"),
            V("SOMA_OIDC_CLIENT_ID", "", "the client registered at the provider (required with the issuer)"),
            V("SOMA_OIDC_CLIENT_SECRET", "", "its secret (required with the issuer)"),
            V("SOMA_OIDC_PROVIDER_NAME", "", "the button says \"Sign in with …\"", unset="the issuer's host"),
            V("SOMA_OIDC_SCOPES", "openid email profile", "scopes asked for (must include `openid`; add `groups` if your provider needs it for the claim)"),
            V("SOMA_OIDC_CREATE_USERS", "1", "`0`: a provider account must be linked by an administrator first", BOOLEAN),
            V("SOMA_OIDC_GROUPS_CLAIM", "", "the ID token claim that lists the person's groups", unset="`groups` when a group map is set", computed=True),
            V("SOMA_OIDC_GROUP_MAP", "", "JSON mapping of provider groups to memberships, roles and staff", unset="none (memberships by hand)"),
            V("SOMA_LOCAL_LOGIN", "1", "`0`: passwords for superusers only (break-glass)", BOOLEAN),
            V("SOMA_OIDC_TIMEOUT_SECONDS", "5", "provider HTTP timeout", NUMBER),
            V("SOMA_OIDC_DISCOVERY_CACHE_SECONDS", "3600", "how long discovery and the key set (JWKS) are kept", NUMBER),
            V("SOMA_OIDC_CLOCK_SKEW_SECONDS", "30", "leeway on `exp`/`iat`", NUMBER),
        ),
    ),
    Section(
        "Tools, the sandbox and MCP",
        "See [tools.md](tools.md).",
        (
            V("SOMA_SEARCH_URL", "", "SearxNG-compatible endpoint for `web_search`", unset="no web search"),
            V("SOMA_TOOL_MAX_CALLS_PER_TURN", "8", "tool calls one reply may make", INTEGER),
            V("SOMA_TOOL_TIMEOUT_SECONDS", "30", "default per-call timeout (a tool or a tool setting may set its own)", NUMBER),
            V("SOMA_TOOL_QUEUE_GRACE_SECONDS", "30", "extra time a call may wait in the queue before the turn gives up", NUMBER),
            V("SOMA_TOOL_RESULT_MAX_CHARS", "16000", "a result's size as sent back to the model", INTEGER),
            V("SOMA_TOOL_BREAKER_FAILURES", "5", "failures that open a tool's circuit breaker (per tool and tenant)", INTEGER),
            V("SOMA_TOOL_BREAKER_OPEN_SECONDS", "60", "how long an open breaker refuses calls", INTEGER),
            V("SOMA_SANDBOX", "auto", "`auto` (= bubblewrap or nothing), `bwrap`, `rlimits` (weaker, unsafe: no filesystem isolation; only when named), `off`"),
            V("SOMA_SANDBOX_PYTHON", "/usr/bin/python3", "interpreter inside the sandbox (under `/usr`)"),
            V("SOMA_SANDBOX_UID", "1000000", "first uid sandboxes run as (one at random per run; the worker must be root to switch)", INTEGER),
            V("SOMA_SANDBOX_UID_COUNT", "1000", "number of uids sandboxes run as", INTEGER),
            V("SOMA_SANDBOX_CPU_SECONDS", "10", "CPU time (SIGXCPU)", INTEGER),
            V("SOMA_SANDBOX_WALL_SECONDS", "20", "wall time (kill)", NUMBER),
            V("SOMA_SANDBOX_MEMORY_MB", "512", "address space", INTEGER),
            V("SOMA_SANDBOX_TMPFS_MB", "64", "size of `/work` (and the largest file)", INTEGER),
            V("SOMA_SANDBOX_MAX_PROCESSES", "32", "processes of the sandbox's uid", INTEGER),
            V("SOMA_SANDBOX_MAX_OPEN_FILES", "64", "open files", INTEGER),
            V("SOMA_SANDBOX_MAX_OUTPUT_BYTES", "65536", "kept of stdout and of stderr each", INTEGER),
            V("SOMA_MCP_TOOLS_TTL_SECONDS", "300", "how long an MCP server's cached tool list is trusted", NUMBER),
            V("SOMA_APPROVAL_TIMEOUT_SECONDS", "600", "a tool call waiting for a person's approval ends as denied after this ([approvals](approvals.md))", NUMBER),
            V("SOMA_APPROVAL_BY_STAFF", "0", "tenant admins and staff may answer another member's approval requests", BOOLEAN),
            V("SOMA_MCP_LIST_TIMEOUT_SECONDS", "10", "how long a turn waits for a tool list that is not cached", NUMBER),
        ),
    ),
    Section(
        "Documents",
        "See [documents.md](documents.md).",
        (
            V("SOMA_DOCUMENTS_MAX_BYTES", "20971520", "largest document upload, bytes (20 MB); larger is refused with 413 while it arrives", INTEGER),
            V("SOMA_DOCUMENTS_PARSE_CPU_SECONDS", "30", "CPU seconds the parser subprocess may use for one document", INTEGER),
            V("SOMA_DOCUMENTS_PARSE_WALL_SECONDS", "60", "wall-clock seconds before the parser subprocess is killed", NUMBER),
            V("SOMA_DOCUMENTS_PARSE_MEMORY_MB", "768", "address space of the parser subprocess, MB", INTEGER),
            V("SOMA_DOCUMENTS_MAX_TEXT_CHARS", "5000000", "most text kept from one document; more ends it as failed", INTEGER),
            V("SOMA_DOCUMENTS_CONTEXT_CHUNKS", "5", "passages of documents given to a turn", INTEGER),
            V("SOMA_DOCUMENTS_CONTEXT_CHARS", "5000", "characters of documents given to a turn", INTEGER),
            V("SOMA_DOCUMENTS_SEARCH_TIMEOUT", "2", "time bound of a turn's document search, seconds (past it the turn goes on without documents)", NUMBER),
            V("SOMA_DOCUMENTS_STUCK_SECONDS", "660", "a document `processing` without progress this long has lost its worker: housekeeping queues it again (or fails it after 3 attempts); keep it above the ingestion task's 600 s time limit", NUMBER),
            V("SOMA_EMBEDDINGS_URL", "", "an OpenAI-compatible embeddings endpoint (`…/v1/embeddings` or its `…/v1` base): chunks and queries are embedded and search is hybrid (full text + vectors, reciprocal rank fusion)", unset="full-text search only"),
            V("SOMA_EMBEDDINGS_MODEL", "text-embedding-3-small", "the `model` sent to it; a document's vectors are used only while this is the model that made them"),
            V("SOMA_EMBEDDINGS_API_KEY", "", "its bearer token, if it needs one"),
            V("SOMA_EMBEDDINGS_BATCH_SIZE", "64", "chunks per embeddings request while ingesting", INTEGER),
            V("SOMA_EMBEDDINGS_TIMEOUT", "30", "seconds for one batch while ingesting, retries included (a query gets half the search's time bound)", NUMBER),
            V("SOMA_EMBEDDINGS_MIN_SIMILARITY", "0.25", "cosine similarity below which a chunk is not a vector match (depends on the model)", NUMBER),
            V("SOMA_EMBEDDINGS_CACHE_MB", "128", "chunk vectors each process keeps in memory between searches (least recently used collections out first; a larger collection is read from the database every search)", INTEGER),
        ),
    ),
    Section(
        "Memory",
        "See [memory.md](memory.md).",
        (
            V("SOMA_MEMORY_URL", "", "SomaBrain-compatible memory service", unset="the embedded store"),
            V("SOMA_MEMORY_TOKEN", "", "its bearer token"),
            V("SOMA_MEMORY_UNIVERSE", "", "`universe` sent with each remember", unset="none"),
            V("SOMA_MEMORY_CONNECT_TIMEOUT", "3", "remote connect timeout, seconds", NUMBER),
            V("SOMA_MEMORY_TIMEOUT", "10", "remote call timeout, seconds", NUMBER),
            V("SOMA_MEMORY_RECALL_TOP_K", "5", "memories recalled per turn (0 turns recall off)", INTEGER),
            V("SOMA_MEMORY_RECALL_MAX_CHARS", "2000", "characters of recalled memories in the prompt", INTEGER),
            V("SOMA_MEMORY_RECALL_SNIPPET_CHARS", "400", "characters of one recalled memory", INTEGER),
            V("SOMA_MEMORY_RECALL_TIMEOUT", "2", "recall time bound, seconds", NUMBER),
            V("SOMA_MEMORY_BACKOFF_BASE_SECONDS", "1", "first retry delay of a write", NUMBER),
            V("SOMA_MEMORY_BACKOFF_MAX_SECONDS", "60", "longest retry delay of a write", NUMBER),
            V("SOMA_MEMORY_RETRY_BUDGET_SECONDS", "86400", "how long a write is retried before it is dead-lettered", NUMBER),
            V("SOMA_MEMORY_DISPATCH_LEASE_SECONDS", "30", "how long a queued delivery holds its write before the sweep may queue it again", NUMBER),
            V("SOMA_MEMORY_SWEEP_SECONDS", "1", "beat interval of the write sweep", NUMBER),
            V("SOMA_MEMORY_REPLICATE_SECONDS", "2", "beat interval of replication", NUMBER),
        ),
    ),
    Section(
        "Schedules and webhooks",
        "See [api.md](api.md#schedules).",
        (
            V("SOMA_SCHEDULE_TICK_SECONDS", "5", "beat interval of the schedules' tick", NUMBER),
            V("SOMA_SCHEDULE_MIN_INTERVAL_SECONDS", "60", "shortest interval (or cron spacing) a schedule may have", NUMBER),
            V("SOMA_SCHEDULE_LATE_SECONDS", "300", "a run missed by more than this (the system was down) runs once, not once per miss", NUMBER),
            V("SOMA_SCHEDULE_MAX_FAILURES", "3", "failed runs in a row that pause a schedule", INTEGER),
            V("SOMA_SCHEDULE_TENANT_CONCURRENCY", "4", "schedule runs running at once per tenant", INTEGER),
            V("SOMA_SCHEDULE_MAX_RUNNING", "32", "schedule runs running at once in all", INTEGER),
            V("SOMA_SCHEDULE_RUN_STALE_SECONDS", "3600", "a run still queued after this (its chat was deleted with the turn) frees its slot", NUMBER),
            V("SOMA_WEBHOOK_SWEEP_SECONDS", "5", "beat interval of the webhook delivery sweep", NUMBER),
            V("SOMA_WEBHOOK_SWEEP_BATCH", "100", "deliveries one sweep sends", INTEGER, computed=True),
            V("SOMA_WEBHOOK_BACKOFF_BASE_SECONDS", "5", "first retry delay of a delivery (doubling, jittered)", NUMBER),
            V("SOMA_WEBHOOK_BACKOFF_CAP_SECONDS", "900", "longest retry delay of a delivery", NUMBER),
            V("SOMA_WEBHOOK_RETRY_SPAN_SECONDS", "21600", "how long a delivery is retried before it is dead", NUMBER),
            V("SOMA_WEBHOOK_ROTATION_GRACE_SECONDS", "86400", "after a secret rotation, how long the old secret still signs too", NUMBER),
        ),
    ),
    Section(
        "Operations: metrics, health, logs, flags, housekeeping",
        "See [operations.md](operations.md).",
        (
            V("PROMETHEUS_MULTIPROC_DIR", "", "shared metrics directory of a host's processes", unset="per-process metrics"),
            V("SOMA_METRICS_PORT", "0", "a worker serves its host's metrics on this port (0: off)", INTEGER),
            V("SOMA_METRICS_ADDR", "127.0.0.1", "address a worker's metrics port binds (not loopback → the token is required)"),
            V("SOMA_METRICS_TOKEN", "", "bearer token for `/metrics`, a worker's metrics port and `/readyz` details (required in PROD, 16+ characters)", unset="open (DEV, STAGING)"),
            V("SOMA_METRICS_SCRAPE_CACHE_SECONDS", "5", "cache of database/broker gauges", NUMBER),
            V("SOMA_READYZ_TIMEOUT_SECONDS", "2", "per-check timeout of `/readyz`", NUMBER),
            V("SOMA_READYZ_CACHE_SECONDS", "2", "how long a `/readyz` answer is reused", NUMBER),
            V("SOMA_READYZ_REQUIRED", "", "checks that make `/readyz` answer 503 when down (comma-separated)", unset="database,redis,broker"),
            V("SOMA_ACCESS_LOG", "1", "one JSON access line per request", BOOLEAN),
            V("OTEL_EXPORTER_OTLP_ENDPOINT", "", "turn tracing on (OTLP/HTTP collector); the other `OTEL_*` variables apply", unset="tracing off"),
            V("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", "the same, for traces only"),
            V("OTEL_SERVICE_NAME", "", "the traces' service name", unset="`somaagent-web`, `somaagent-worker`, `somaagent-beat`"),
            V("FLOWER_BASIC_AUTH", "", "Flower's `user:password` (required outside DEV: 12+ characters, no placeholder)", unset="Flower starts in DEV only"),
            V("SOMA_FLAGS_REFRESH_SECONDS", "3", "how often a process checks for feature flag changes", NUMBER),
            V("SOMA_HOUSEKEEPING_SECONDS", "300", "housekeeping interval", NUMBER),
            V("SOMA_OUTBOX_RETENTION_SECONDS", "604800", "published outbox rows and delivered memory writes are kept this long (7 days)", INTEGER),
            V("SOMA_IDEMPOTENCY_RETENTION_SECONDS", "86400", "stored `Idempotency-Key` answers are kept this long (1 day)", INTEGER),
            V("SOMA_REPLICA_RETENTION_SECONDS", "2592000", "memory replicas and replicated WAL records are kept this long (30 days)", INTEGER),
        ),
    ),
)
# fmt: on

# Names the code spells that are not settings a deployment sets.
NOT_SETTINGS: dict[str, str] = {
    "HTTP_AUTHORIZATION": "a key of an ASGI/WSGI request's environ, not of the process environment",
    "SOMA_DEV_USER": "written into var/dev-credentials.txt for your shell; never read",
    "SOMA_DEV_PASSWORD": "written into var/dev-credentials.txt for your shell; never read",
    "SOMA_DEV_API_KEY": "written into var/dev-credentials.txt for your shell; never read",
    "SOMA_DEV_TENANT": "written into var/dev-credentials.txt for your shell; never read",
}


def variables() -> dict[str, Variable]:
    return {v.name: v for section in SECTIONS for v in section.variables}
