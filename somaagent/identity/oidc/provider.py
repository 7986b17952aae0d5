"""The identity provider over HTTP: discovery, its signing keys and the token endpoint.

Nothing here runs at import time or at start-up: the first sign-in fetches
``<issuer>/.well-known/openid-configuration`` (kept ``SOMA_OIDC_DISCOVERY_CACHE_SECONDS``)
and the JWKS it names. Keys are kept as long as discovery, and fetched again
sooner when a token arrives signed with a key id they lack (the provider added a
key): so a new key is picked up at once, and a key the provider withdrew stops
being trusted once the kept set is that old.
Every failure — unreachable, an HTTP error, not JSON, a document for another
issuer, a required endpoint missing — raises ``ProviderUnavailable``; callers
refuse the sign-in, they never carry on with less.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from django.conf import settings

from somaagent.identity.oidc.conf import OidcSettings
from somaagent.identity.oidc.errors import ProviderUnavailable
from somaagent.process_local import PerProcess

logger = logging.getLogger(__name__)

DISCOVERY_PATH = "/.well-known/openid-configuration"
ATTEMPTS = 2


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str = ""
    token_auth_methods: tuple[str, ...] = ("client_secret_basic",)
    signing_algorithms: tuple[str, ...] = ("RS256",)


def _config() -> OidcSettings:
    return settings.SOMA_OIDC


_client = PerProcess(
    lambda: httpx.Client(
        timeout=httpx.Timeout(_config().http_timeout_seconds),
        follow_redirects=False,
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=5),
    )
)


def _get_json(url: str, what: str) -> Any:
    last: Exception | None = None
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(0.2)
        try:
            response = _client.get().get(url, headers={"Accept": "application/json"})
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            last = exc
            continue
        if response.status_code >= 500:
            last = RuntimeError(f"HTTP {response.status_code}")
            continue
        if response.status_code != 200:
            raise ProviderUnavailable(f"The identity provider's {what} answered HTTP {response.status_code}.")
        try:
            return response.json()
        except ValueError:
            raise ProviderUnavailable(f"The identity provider's {what} is not JSON.") from None
    logger.warning("oidc %s unreachable at %s: %s", what, url, last)
    raise ProviderUnavailable(f"The identity provider's {what} cannot be reached; try again shortly.")


def _metadata_from(document: Any, issuer: str) -> ProviderMetadata:
    if not isinstance(document, dict):
        raise ProviderUnavailable("The identity provider's discovery document is not a JSON object.")
    if str(document.get("issuer", "")).rstrip("/") != issuer:
        raise ProviderUnavailable(
            "The identity provider's discovery document names another issuer "
            f"({str(document.get('issuer'))[:200]!r}, expected {issuer!r})."
        )
    missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not document.get(k)]
    if missing:
        raise ProviderUnavailable(f"The identity provider's discovery document lacks {', '.join(missing)}.")
    methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    algorithms = document.get("id_token_signing_alg_values_supported") or ["RS256"]
    return ProviderMetadata(
        issuer=str(document["issuer"]),
        authorization_endpoint=str(document["authorization_endpoint"]),
        token_endpoint=str(document["token_endpoint"]),
        jwks_uri=str(document["jwks_uri"]),
        end_session_endpoint=str(document.get("end_session_endpoint") or ""),
        token_auth_methods=tuple(str(m) for m in methods),
        signing_algorithms=tuple(str(a) for a in algorithms),
    )


class _Cache:
    """The discovery document and the key set, per process, refreshed as described above."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.metadata: ProviderMetadata | None = None
        self.metadata_at = 0.0
        self.keys: dict[str, dict[str, Any]] = {}
        self.keys_uri = ""
        self.keys_at = 0.0

    def clear(self) -> None:
        with self.lock:
            self.metadata, self.metadata_at, self.keys, self.keys_uri = None, 0.0, {}, ""
            self.keys_at = 0.0


_cache = _Cache()


def provider_metadata() -> ProviderMetadata:
    """The provider's endpoints (discovery on first use, then cached)."""
    config = _config()
    now = time.monotonic()
    with _cache.lock:
        if _cache.metadata is not None and now - _cache.metadata_at < config.discovery_cache_seconds:
            return _cache.metadata
    metadata = _metadata_from(_get_json(config.issuer + DISCOVERY_PATH, "discovery document"), config.issuer)
    with _cache.lock:
        _cache.metadata, _cache.metadata_at = metadata, now
    return metadata


def _fetch_keys(jwks_uri: str) -> dict[str, dict[str, Any]]:
    document = _get_json(jwks_uri, "key set (JWKS)")
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ProviderUnavailable("The identity provider's key set (JWKS) has no 'keys' list.")
    keys: dict[str, dict[str, Any]] = {}
    for raw in document["keys"]:
        if not isinstance(raw, dict) or raw.get("use", "sig") != "sig":
            continue
        try:
            jwt.PyJWK(raw)
        except (jwt.PyJWKError, jwt.InvalidKeyError):
            continue  # a key type this library does not know: unusable, like one never published
        keys[str(raw.get("kid", ""))] = raw
    return keys


def _pick(keys: dict[str, dict[str, Any]], kid: str) -> dict[str, Any] | None:
    """The key with this id; a token without a key id may use the provider's only key."""
    if kid in keys:
        return keys[kid]
    if not kid and len(keys) == 1:
        return next(iter(keys.values()))
    return None


def signing_key(kid: str) -> dict[str, Any] | None:
    """The provider's public key (a JWK) with this key id: from the kept key set while it is
    fresh (``SOMA_OIDC_DISCOVERY_CACHE_SECONDS``), else, or when it lacks the key, fetched again once."""
    metadata = provider_metadata()
    now = time.monotonic()
    with _cache.lock:
        fresh = (
            _cache.keys_uri == metadata.jwks_uri and now - _cache.keys_at < _config().discovery_cache_seconds
        )
        known = _cache.keys if fresh else {}
    found = _pick(known, kid)
    if found is not None:
        return found
    keys = _fetch_keys(metadata.jwks_uri)
    with _cache.lock:
        _cache.keys, _cache.keys_uri, _cache.keys_at = keys, metadata.jwks_uri, now
    return _pick(keys, kid)


def token_exchange(*, code: str, redirect_uri: str, code_verifier: str) -> dict[str, Any]:
    """Trade the authorization code (with the PKCE verifier) for tokens at the token endpoint."""
    metadata = provider_metadata()
    config = _config()
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
        "client_id": config.client_id,
    }
    auth: httpx.Auth | httpx._client.UseClientDefault = httpx.USE_CLIENT_DEFAULT
    if "client_secret_basic" in metadata.token_auth_methods:
        auth = httpx.BasicAuth(config.client_id, config.client_secret)
    else:
        form["client_secret"] = config.client_secret
    try:
        response = _client.get().post(metadata.token_endpoint, data=form, auth=auth)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        logger.warning("oidc token endpoint unreachable: %s", exc)
        raise ProviderUnavailable("The identity provider's token endpoint cannot be reached.") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict):
        error = body.get("error") if isinstance(body, dict) else None
        logger.warning("oidc token endpoint refused: HTTP %s %s", response.status_code, error)
        raise ProviderTokenError(str(error or f"HTTP {response.status_code}"))
    return body


class ProviderTokenError(Exception):
    """The token endpoint refused the code (``invalid_grant``: used, expired, wrong verifier)."""


def forget_provider() -> None:
    """Drop the cached discovery document and keys (tests; a changed issuer)."""
    _cache.clear()
