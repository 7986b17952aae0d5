"""Sign-in settings (``settings.SOMA_OIDC``), read from the environment without any network call.

Unset ``SOMA_OIDC_ISSUER`` means single sign-on is off: no button, no route does anything.
The claim mapping (``SOMA_OIDC_GROUP_MAP``) is parsed here, so a malformed one stops start-up
with a message naming the problem instead of failing at someone's sign-in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import urlparse

from somaagent.environment import ConfigurationError, deployment_mode, env, env_bool, env_float

STAFF = "staff"
ROLES = ("member", "admin")  # Membership.Role values, lowest first
ROLE_WORDS = {"member": "member", "admin": "admin", "tenant_admin": "admin"}


@dataclass(frozen=True)
class Grant:
    """What one provider group gives: a role in a tenant, or staff (the admin site)."""

    staff: bool = False
    tenant: str = ""
    role: str = ""


@dataclass(frozen=True)
class OidcSettings:
    issuer: str = ""
    client_id: str = ""
    client_secret: str = ""
    provider_name: str = ""
    scopes: str = "openid email profile"
    create_users: bool = True
    groups_claim: str = ""
    group_map: dict[str, tuple[Grant, ...]] = field(default_factory=dict)
    local_login: bool = True
    http_timeout_seconds: float = 5.0
    discovery_cache_seconds: float = 3600.0
    clock_skew_seconds: float = 30.0

    @property
    def enabled(self) -> bool:
        return bool(self.issuer)

    @property
    def maps_claims(self) -> bool:
        """True when memberships and staff follow the provider's claim at every sign-in."""
        return bool(self.groups_claim)

    @property
    def origin(self) -> str:
        """The provider's origin: logging out redirects there (a form's target, for CSP)."""
        parts = urlparse(self.issuer)
        return f"{parts.scheme}://{parts.netloc}" if self.enabled else ""

    @property
    def button_label(self) -> str:
        return f"Sign in with {self.provider_name}"


def parse_grant(group: str, raw: object) -> Grant:
    """``"staff"``, or ``"<tenant>:<role>"`` with role ``member`` or ``admin``."""
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigurationError(
            f"SOMA_OIDC_GROUP_MAP[{group!r}]: each grant is a string like 'acme:member', 'acme:admin' "
            f"or 'staff', got {raw!r}"
        )
    text = raw.strip()
    if text == STAFF:
        return Grant(staff=True)
    tenant, sep, role = text.rpartition(":")
    tenant = tenant.strip()
    role_value = ROLE_WORDS.get(role.strip().lower())
    if not sep or not tenant or role_value is None or len(tenant) > 100:
        raise ConfigurationError(
            f"SOMA_OIDC_GROUP_MAP[{group!r}]: {text!r} is not '<tenant>:member', '<tenant>:admin' or 'staff'"
        )
    return Grant(tenant=tenant, role=role_value)


def parse_group_map(raw: str) -> dict[str, tuple[Grant, ...]]:
    """A JSON object: provider group → one grant or a list of grants."""
    if not raw:
        return {}
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise ConfigurationError(f"SOMA_OIDC_GROUP_MAP is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ConfigurationError('SOMA_OIDC_GROUP_MAP must be a JSON object: {"<group>": "<tenant>:<role>"}')
    mapping: dict[str, tuple[Grant, ...]] = {}
    for group, value in document.items():
        values = value if isinstance(value, list) else [value]
        if not values:
            raise ConfigurationError(f"SOMA_OIDC_GROUP_MAP[{group!r}] grants nothing")
        mapping[str(group)] = tuple(parse_grant(group, v) for v in values)
    return mapping


def _default_name(issuer: str) -> str:
    return urlparse(issuer).hostname or "single sign-on"


def load() -> OidcSettings:
    issuer = env("SOMA_OIDC_ISSUER").rstrip("/")
    group_map = parse_group_map(env("SOMA_OIDC_GROUP_MAP"))
    groups_claim = env("SOMA_OIDC_GROUPS_CLAIM", "groups" if group_map else "")
    settings = OidcSettings(
        issuer=issuer,
        client_id=env("SOMA_OIDC_CLIENT_ID"),
        client_secret=env("SOMA_OIDC_CLIENT_SECRET"),
        provider_name=env("SOMA_OIDC_PROVIDER_NAME") or _default_name(issuer),
        scopes=env("SOMA_OIDC_SCOPES", "openid email profile"),
        create_users=env_bool("SOMA_OIDC_CREATE_USERS", True),
        groups_claim=groups_claim,
        group_map=group_map,
        local_login=env_bool("SOMA_LOCAL_LOGIN", True),
        http_timeout_seconds=env_float("SOMA_OIDC_TIMEOUT_SECONDS", 5.0),
        discovery_cache_seconds=env_float("SOMA_OIDC_DISCOVERY_CACHE_SECONDS", 3600.0),
        clock_skew_seconds=env_float("SOMA_OIDC_CLOCK_SKEW_SECONDS", 30.0),
    )
    _check(settings)
    return settings


def _check(settings: OidcSettings) -> None:
    if not settings.enabled:
        return
    problems = []
    if urlparse(settings.issuer).scheme not in ("http", "https"):
        problems.append(f"SOMA_OIDC_ISSUER must be an http(s) URL, got {settings.issuer!r}")
    elif deployment_mode() == "PROD" and not settings.issuer.startswith("https://"):
        problems.append("SOMA_OIDC_ISSUER must be an https URL in PROD")
    if not settings.client_id:
        problems.append("SOMA_OIDC_CLIENT_ID is not set (SOMA_OIDC_ISSUER is)")
    if not settings.client_secret:
        problems.append("SOMA_OIDC_CLIENT_SECRET is not set (SOMA_OIDC_ISSUER is)")
    if "openid" not in settings.scopes.split():
        problems.append("SOMA_OIDC_SCOPES must include 'openid'")
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConfigurationError(f"Single sign-on is misconfigured:\n{lines}")
