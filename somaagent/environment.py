"""The environment, read in one place (SPEC §3): ``env``, ``env_int``, ``env_float``, ``env_bool``.

Also what the settings derive from it before Django starts: the directories
(``BASE_DIR``, ``VAR_DIR``), the deployment mode, the Redis URL (the embedded
server when ``REDIS_URL`` is unset) and DEV's generated secrets. Unset means the
embedded default. ``PROD`` refuses embedded defaults and insecure settings,
naming every problem at once (``check_production``). The typed settings built
from it are in ``somaagent/soma_settings.py``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlparse

from somaagent.paths import BASE_DIR, VAR_DIR
from somaagent.private_files import private_dir, tighten, write_private

DEPLOYMENT_MODES = ("DEV", "STAGING", "PROD")


class ConfigurationError(RuntimeError):
    """Start-up refused: the message names each problem."""


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, "").strip() or default


def env_int(name: str, default: int) -> int:
    raw = env(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from exc


def env_float(name: str, default: float) -> float:
    raw = env(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from exc


def env_bool(name: str, default: bool) -> bool:
    raw = env(name).lower()
    if not raw:
        return default
    return raw in ("1", "true", "yes", "on")


def load_dotenv_file() -> None:
    dotenv_path = BASE_DIR / ".env"
    if dotenv_path.exists():
        from dotenv import load_dotenv

        load_dotenv(dotenv_path, override=False)


@dataclass(frozen=True)
class RedisConfig:
    """One Redis URL, spelled for each client that needs it."""

    url: str
    embedded: bool

    @property
    def kombu_url(self) -> str:
        parsed = urlparse(self.url)
        if parsed.scheme != "unix":
            return self.url
        db = parse_qs(parsed.query).get("db", ["0"])[0]
        return f"redis+socket://{parsed.path}?virtual_host={db}"


def redis_config() -> RedisConfig:
    url = env("REDIS_URL")
    if url:
        return RedisConfig(url=url, embedded=False)
    # Loaded only without REDIS_URL; and `python -m somaagent.embedded_redis` (make stop) must not
    # find its module imported already by the package (somaagent -> celery -> ... -> here).
    from somaagent.embedded_redis import ensure_running

    sock = ensure_running(VAR_DIR)
    db = env_int("SOMA_EMBEDDED_REDIS_DB", 0)
    return RedisConfig(url=f"unix://{sock}?db={db}", embedded=True)


def _generated_secret(name: str, factory: Callable[[], str]) -> str:
    """A DEV-only secret generated once into var/ and reused after."""
    path = private_dir(VAR_DIR) / name
    if not path.exists():
        write_private(path, factory(), keep_existing=True)
    tighten(path)
    return path.read_text().strip()


@dataclass
class StartupProblems:
    problems: list[str] = field(default_factory=list)

    def add(self, message: str) -> None:
        self.problems.append(message)

    def raise_if_any(self, mode: str) -> None:
        if self.problems:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            raise ConfigurationError(f"SomaAgent refuses to start in {mode} mode:\n{lines}")


def deployment_mode() -> str:
    mode = env("SOMA_DEPLOYMENT_MODE", "DEV").upper()
    if mode not in DEPLOYMENT_MODES:
        raise ConfigurationError(
            f"SOMA_DEPLOYMENT_MODE must be one of {', '.join(DEPLOYMENT_MODES)}, got {mode!r}"
        )
    return mode


WEAK_SECRET_KEYS = {"secret", "changeme", "change-me", "django", "insecure", "development", "dev"}


def _secret_key_problem(secret: str) -> str | None:
    if secret.startswith("django-insecure") or secret.lower() in WEAK_SECRET_KEYS:
        return "DJANGO_SECRET_KEY is a default or placeholder value: use 50 random characters"
    if len(secret) < 32 or len(set(secret)) < 10:
        return "DJANGO_SECRET_KEY is too short or too simple: use 50 random characters"
    return None


def _fernet_key_problems(raw: str) -> list[str]:
    from cryptography.fernet import Fernet

    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if not keys:
        return ["SOMA_FERNET_KEYS holds no key"]
    problems = []
    for position, value in enumerate(keys, start=1):
        try:
            Fernet(value.encode())
        except (ValueError, TypeError):
            problems.append(
                f"SOMA_FERNET_KEYS key #{position} is not a Fernet key (32 url-safe base64-encoded bytes)"
            )
    return problems


def check_production(mode: str) -> None:
    """PROD refuses embedded defaults and insecure settings (SPEC §3), naming every problem."""
    if mode != "PROD":
        return
    problems = StartupProblems()
    for name, what in (
        ("DATABASE_URL", "the database (embedded SQLite is for DEV)"),
        ("REDIS_URL", "Redis (the embedded server is for DEV)"),
        ("SOMA_FERNET_KEYS", "secret encryption keys (generated keys are for DEV)"),
        ("DJANGO_SECRET_KEY", "Django's secret key (a generated one is for DEV)"),
        ("ALLOWED_HOSTS", "the hosts this deployment serves"),
    ):
        if not env(name):
            problems.add(f"{name} is not set: {what}")
    if env_bool("DJANGO_DEBUG", False):
        problems.add("DJANGO_DEBUG is on: turn it off in PROD (it shows settings and code to visitors)")
    secret = env("DJANGO_SECRET_KEY")
    if secret:
        problem = _secret_key_problem(secret)
        if problem:
            problems.add(problem)
    fernet = env("SOMA_FERNET_KEYS")
    if fernet:
        for problem in _fernet_key_problems(fernet):
            problems.add(problem)
    hosts = [h.strip() for h in env("ALLOWED_HOSTS").split(",") if h.strip()]
    if "*" in hosts:
        problems.add("ALLOWED_HOSTS contains '*': name the hosts this deployment serves")
    opa = env("SOMA_OPA_URL")
    if opa and urlparse(opa).scheme not in ("http", "https"):
        problems.add(f"SOMA_OPA_URL must be an http(s) URL, got {opa!r}")
    for problem in _https_and_ops_problems():
        problems.add(problem)
    problems.raise_if_any(mode)


HSTS_DEFAULT_SECONDS = 365 * 24 * 3600
HSTS_MIN_SECONDS = 24 * 3600
METRICS_TOKEN_MIN_CHARS = 16
BOOLEAN_WORDS = ("1", "0", "true", "false", "yes", "no", "on", "off")


def _https_and_ops_problems() -> list[str]:
    """PROD's HTTPS and operator endpoints: what settings.py cannot fix on its own. (It fixes the
    rest: secure session and CSRF cookies, HSTS for a year.)"""
    problems = []
    token = env("SOMA_METRICS_TOKEN")
    if not token:
        problems.append(
            "SOMA_METRICS_TOKEN is not set: /metrics, a worker's metrics port and /readyz details "
            "need a bearer token in PROD"
        )
    elif len(token) < METRICS_TOKEN_MIN_CHARS:
        problems.append(f"SOMA_METRICS_TOKEN is too short: use {METRICS_TOKEN_MIN_CHARS}+ random characters")
    if env("SOMA_BEHIND_TLS_PROXY").lower() not in BOOLEAN_WORDS:
        problems.append(
            "SOMA_BEHIND_TLS_PROXY is not set: 1 when a TLS-terminating proxy in front sets "
            "X-Forwarded-Proto (and drops the client's; this sets SECURE_PROXY_SSL_HEADER), "
            "0 when the server itself speaks HTTPS"
        )
    if env("SOMA_HSTS_SECONDS") and env_int("SOMA_HSTS_SECONDS", 0) < HSTS_MIN_SECONDS:
        problems.append(f"SOMA_HSTS_SECONDS is below {HSTS_MIN_SECONDS} (one day): HSTS must be on in PROD")
    return problems


def secret_key(mode: str) -> str:
    key = env("DJANGO_SECRET_KEY")
    if key:
        return key
    if mode == "PROD":
        raise ConfigurationError("DJANGO_SECRET_KEY is not set")
    return _generated_secret("secret_key", lambda: secrets.token_urlsafe(50))


def fernet_keys(mode: str) -> list[str]:
    raw = env("SOMA_FERNET_KEYS")
    if raw:
        return [k.strip() for k in raw.split(",") if k.strip()]
    if mode != "DEV":
        raise ConfigurationError(f"SOMA_FERNET_KEYS is not set ({mode} mode generates no keys)")
    from cryptography.fernet import Fernet

    return [_generated_secret("fernet_key", lambda: Fernet.generate_key().decode())]
