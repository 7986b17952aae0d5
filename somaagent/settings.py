"""Django settings (project wiring): everything comes from the environment via somaagent.environment."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url

from memory.conf import memory_settings_from_env
from somaagent import environment, local_llm
from somaagent.db_pool import pooled
from somaagent.environment import env, env_bool, env_float, env_int
from somaagent.identity.oidc import conf as oidc_conf
from somaagent.paths import BASE_DIR, VAR_DIR
from somaagent.private_files import create_private_file
from somaagent.soma_settings import SomaSettings, ToolSettings, ops_settings_from_env

environment.load_dotenv_file()

DEPLOYMENT_MODE = environment.deployment_mode()
environment.check_production(DEPLOYMENT_MODE)

SECRET_KEY = environment.secret_key(DEPLOYMENT_MODE)
DEBUG = env_bool("DJANGO_DEBUG", DEPLOYMENT_MODE == "DEV")
ALLOWED_HOSTS = [h.strip() for h in env("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")]
CSRF_TRUSTED_ORIGINS = [o for o in env("CSRF_TRUSTED_ORIGINS").split(",") if o]
FERNET_KEYS = environment.fernet_keys(DEPLOYMENT_MODE)
PORT = env_int("PORT", 8000)

INSTALLED_APPS = [
    "somaagent.project.admin_app.SomaAdminConfig",  # django.contrib.admin, its login throttled
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_celery_beat",
    "channels",
    "somaagent",
    "somaagent.project.webchat",
    "somaagent.flags",
    "conversations",
    "tools",
    "memory",
    "documents",
]

MIDDLEWARE = [
    "somaagent.project.db_unavailable.DatabaseUnavailableMiddleware",  # a lost database answers 503
    "somaagent.project.middleware.ObservabilityMiddleware",  # request id, HTTP metrics, access log
    # Django's own, declared sync-only so they run in one thread hop (see the module)
    "somaagent.project.django_middleware.SecurityMiddleware",
    "somaagent.project.django_middleware.SessionMiddleware",
    "somaagent.project.django_middleware.CommonMiddleware",
    "somaagent.project.django_middleware.CsrfViewMiddleware",
    "somaagent.project.django_middleware.AuthenticationMiddleware",
    "somaagent.project.django_middleware.MessageMiddleware",
    "somaagent.project.django_middleware.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "somaagent.urls"
ASGI_APPLICATION = "somaagent.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database -------------------------------------------------------------
_database_url = env("DATABASE_URL")
if _database_url:
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=600)}
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # Under ASGI each request runs in a thread of its own and persistent
        # connections are per thread: one new connection per request, never
        # reused. A pool per process instead (somaagent/db_pool.py).
        DATABASES["default"] = pooled(DATABASES["default"])
else:
    _sqlite_path = env("SOMA_SQLITE_PATH", str(VAR_DIR / "somaagent.sqlite3"))
    create_private_file(Path(_sqlite_path))  # 0600 before SQLite creates it at the umask's mode
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _sqlite_path,
            "OPTIONS": {
                # WAL lets readers run beside the one writer; IMMEDIATE takes
                # the write lock at BEGIN so concurrent writers queue on
                # busy_timeout instead of failing with "database is locked".
                "init_command": (
                    "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA busy_timeout=30000;"
                ),
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
            # Tests run against a file so that worker processes see the same data.
            "TEST": {"NAME": str(VAR_DIR / "test.sqlite3")},
        }
    }
IS_SQLITE = DATABASES["default"]["ENGINE"].endswith("sqlite3")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- HTTPS (PROD): cookies over HTTPS only, HSTS; environment.check_production refuses the rest ---------
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = DEPLOYMENT_MODE == "PROD"
SECURE_HSTS_SECONDS = env_int(
    "SOMA_HSTS_SECONDS", environment.HSTS_DEFAULT_SECONDS if DEPLOYMENT_MODE == "PROD" else 0
)
if env_bool("SOMA_BEHIND_TLS_PROXY", False):
    # Only behind a proxy that sets this header and drops the one a client sends.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- redis ------------------------------------------------------------------
_redis = environment.redis_config()
REDIS_URL = _redis.url
REDIS_EMBEDDED = _redis.embedded
REDIS_KEY_PREFIX = env("SOMA_REDIS_PREFIX", "soma:")
CELERY_BROKER_URL = env("CELERY_BROKER_URL") or _redis.kombu_url
CELERY_RESULT_URL = _redis.kombu_url

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_KEY_PREFIX + "cache",
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": REDIS_URL}], "prefix": REDIS_KEY_PREFIX + "asgi"},
    }
}

# --- auth, i18n, static --------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [  # Django's standard set (createsuperuser, admin and password forms)
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/login/"  # the web chat's own login page (somaagent.project.webchat)
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# --- REST API -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "somaagent.identity.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["somaagent.identity.authentication.IsTenantMember"],
    "DEFAULT_PARSER_CLASSES": ["somaagent.json_input.JsonParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON only: ``?format=`` is ours (exports: json or markdown), not DRF's renderer switch.
    "URL_FORMAT_OVERRIDE": None,
    "EXCEPTION_HANDLER": "somaagent.api_errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "somaagent.openapi.SomaAutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SomaAgent API",
    "DESCRIPTION": "Conversational agent backend: accept messages, stream replies.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request components apart from responses, so that request schemas can be stricter.
    "COMPONENT_SPLIT_REQUEST": True,
    "COMPONENT_SPLIT_PATCH": False,  # PATCH takes the same required fields (the code does)
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "somaagent.openapi.error_responses",
    ],
}

# --- product limits and behaviour --------------------------------------------------
# With no SOMA_LLM_BASE_URL the default model is the embedded local one, when installed
# (somaagent/local_llm.py; `make run` starts its server as the Procfile's `llm` process).
_local_llm_url = (
    local_llm.base_url(env_int("SOMA_LOCAL_LLM_PORT", local_llm.DEFAULT_PORT))
    if not env("SOMA_LLM_BASE_URL") and env_bool("SOMA_LOCAL_LLM", True) and local_llm.installed()
    else ""
)
SOMA = SomaSettings(
    max_message_chars=env_int("SOMA_MAX_MESSAGE_CHARS", 32_000),
    max_request_bytes=env_int("SOMA_MAX_REQUEST_BYTES", 256 * 1024),
    max_metadata_bytes=env_int("SOMA_MAX_METADATA_BYTES", 16 * 1024),
    history_window_events=env_int("SOMA_HISTORY_WINDOW_EVENTS", 40),
    turn_lease_seconds=env_float("SOMA_TURN_LEASE_SECONDS", 15.0),
    # A turn runs on a thread of the worker (celeryconfig.py); the worker ends it past this limit.
    turn_time_limit_seconds=env_float("SOMA_TURN_TIME_LIMIT_SECONDS", 840.0),
    worker_concurrency=env_int("SOMA_WORKER_CONCURRENCY", 500),
    web_threads=env_int("SOMA_WEB_THREADS", 16),
    turn_max_attempts=env_int("SOMA_TURN_MAX_ATTEMPTS", 3),
    turn_redispatch_after_seconds=env_float("SOMA_TURN_REDISPATCH_AFTER_SECONDS", 30.0),
    delta_coalesce_seconds=env_float("SOMA_DELTA_COALESCE_SECONDS", 0.05),
    stream_buffer_ttl_seconds=env_int("SOMA_STREAM_BUFFER_TTL_SECONDS", 3600),
    stream_buffer_maxlen=env_int("SOMA_STREAM_BUFFER_MAXLEN", 20_000),
    sse_heartbeat_seconds=env_float("SOMA_SSE_HEARTBEAT_SECONDS", 15.0),
    outbox_max_age_seconds=env_int("SOMA_OUTBOX_MAX_AGE_SECONDS", 24 * 3600),
    outbox_sweep_seconds=env_float("SOMA_OUTBOX_SWEEP_SECONDS", 2.0),
    turn_sweep_seconds=env_float("SOMA_TURN_SWEEP_SECONDS", 5.0),
    outbox_sweep_min_age_seconds=env_float("SOMA_OUTBOX_SWEEP_MIN_AGE_SECONDS", 2.0),
    llm_base_url=env("SOMA_LLM_BASE_URL") or _local_llm_url,
    llm_api_key=env("SOMA_LLM_API_KEY"),
    llm_model=env("SOMA_LLM_MODEL", local_llm.MODEL_ALIAS if _local_llm_url else "default"),
    llm_connect_timeout=env_float("SOMA_LLM_CONNECT_TIMEOUT", 5.0),
    llm_read_timeout=env_float("SOMA_LLM_READ_TIMEOUT", 60.0),
    opa_url=env("SOMA_OPA_URL").rstrip("/"),
    opa_timeout_seconds=env_float("SOMA_OPA_TIMEOUT_SECONDS", 2.0),
    rate_limit_per_minute=env_int("SOMA_RATE_LIMIT_PER_MINUTE", 600),
    login_attempts_per_minute=env_int("SOMA_LOGIN_ATTEMPTS_PER_MINUTE", 10),
    max_streams_per_credential=env_int("SOMA_MAX_STREAMS_PER_CREDENTIAL", 1000),
    login_attempts_per_address_per_minute=env_int("SOMA_LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE", 30),
    budget_completion_reserve_tokens=env_int("SOMA_BUDGET_COMPLETION_RESERVE_TOKENS", 1024),
    memory=memory_settings_from_env(),
    tools=ToolSettings(
        search_url=env("SOMA_SEARCH_URL"),
        max_calls_per_turn=env_int("SOMA_TOOL_MAX_CALLS_PER_TURN", 8),
        default_timeout_seconds=env_float("SOMA_TOOL_TIMEOUT_SECONDS", 30.0),
        queue_grace_seconds=env_float("SOMA_TOOL_QUEUE_GRACE_SECONDS", 30.0),
        result_max_chars=env_int("SOMA_TOOL_RESULT_MAX_CHARS", 16_000),
        breaker_failures=env_int("SOMA_TOOL_BREAKER_FAILURES", 5),
        breaker_open_seconds=env_int("SOMA_TOOL_BREAKER_OPEN_SECONDS", 60),
        sandbox_mode=env("SOMA_SANDBOX", "auto").lower(),
        sandbox_python=env("SOMA_SANDBOX_PYTHON", "/usr/bin/python3"),
        sandbox_uid=env_int("SOMA_SANDBOX_UID", 1_000_000),
        sandbox_uid_count=env_int("SOMA_SANDBOX_UID_COUNT", 1000),
        sandbox_cpu_seconds=env_int("SOMA_SANDBOX_CPU_SECONDS", 10),
        sandbox_wall_seconds=env_float("SOMA_SANDBOX_WALL_SECONDS", 20.0),
        sandbox_memory_mb=env_int("SOMA_SANDBOX_MEMORY_MB", 512),
        sandbox_max_processes=env_int("SOMA_SANDBOX_MAX_PROCESSES", 32),
        sandbox_max_open_files=env_int("SOMA_SANDBOX_MAX_OPEN_FILES", 64),
        sandbox_max_output_bytes=env_int("SOMA_SANDBOX_MAX_OUTPUT_BYTES", 64 * 1024),
        sandbox_tmpfs_mb=env_int("SOMA_SANDBOX_TMPFS_MB", 64),
        mcp_tools_ttl_seconds=env_float("SOMA_MCP_TOOLS_TTL_SECONDS", 300.0),
        mcp_list_timeout_seconds=env_float("SOMA_MCP_LIST_TIMEOUT_SECONDS", 10.0),
        approval_timeout_seconds=env_float("SOMA_APPROVAL_TIMEOUT_SECONDS", 600.0),
        approval_by_staff=env_bool("SOMA_APPROVAL_BY_STAFF", False),
    ),
    llm_max_retries=env_int("SOMA_LLM_MAX_RETRIES", 2),
    llm_retry_after_max_seconds=env_float("SOMA_LLM_RETRY_AFTER_MAX_SECONDS", 30.0),
    # models: context, summaries, the embedded local model (issue 7)
    context_tokens=env_int("SOMA_CONTEXT_TOKENS", 6000),
    summary_batch_messages=env_int("SOMA_SUMMARY_BATCH_MESSAGES", 200),
    title_from_model=env_bool("SOMA_TITLE_FROM_MODEL", True),
    max_upload_bytes=env_int("SOMA_MAX_UPLOAD_BYTES", 64 * 1024 * 1024),
    max_import_bytes=env_int("SOMA_MAX_IMPORT_BYTES", 32 * 1024 * 1024),
)

# --- JWT (djangorestframework-simplejwt): short access tokens, refresh re-checks the membership.
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env_int("SOMA_JWT_ACCESS_SECONDS", 300)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env_int("SOMA_JWT_REFRESH_SECONDS", 86400)),
    "SIGNING_KEY": SECRET_KEY,
    "ALGORITHM": "HS256",
    "AUTH_HEADER_TYPES": ("Bearer",),
    "UPDATE_LAST_LOGIN": False,
}
# Metrics, readiness, feature flags, housekeeping (somaagent/soma_settings.py).
SOMA_OPS = ops_settings_from_env()

# --- single sign-on (OpenID Connect, somaagent/identity/oidc): off unless SOMA_OIDC_ISSUER is set. ----------
# Read from the environment only; the provider is first asked at the first sign-in, never at start-up.
SOMA_OIDC = oidc_conf.load()
AUTHENTICATION_BACKENDS = [
    # passwords; superusers only with SOMA_LOCAL_LOGIN=0
    "somaagent.identity.oidc.backend.LocalPasswordBackend",
    "somaagent.identity.oidc.backend.OidcBackend",  # the provider's authorization code flow
]

# --- logging ---------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "somaagent.logging.JsonFormatter"}},
    # The beat sweeps' routine runs log at DEBUG unless they did something (somaagent/logging.py).
    # While a dependency is down, its repeated complaints go out once a minute (with a count).
    "filters": {
        "routine_tasks": {"()": "somaagent.logging.QuietRoutineTasks"},
        "quiet_repeats": {"()": "somaagent.logging.QuietRepeats"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stdout",
            "filters": ["routine_tasks", "quiet_repeats"],
        }
    },
    "root": {"handlers": ["stdout"], "level": env("LOG_LEVEL", "INFO")},
    # httpx logs every request at INFO (readiness probes, every model call): warnings only.
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
