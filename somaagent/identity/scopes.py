"""What an API key (or token) may do. Scopes are independent: ``admin`` does not imply chatting.

- ``conversations:read``   list and read sessions, events and streams
- ``conversations:write``  send messages, rename, cancel and delete sessions
- ``attachments:write``    upload attachments
- ``admin``                manage the tenant: API keys, read budgets and usage

A key created without scopes gets ``DEFAULT_SCOPES`` (everything but ``admin``).
Users get the scopes of their role in the tenant (``ROLE_SCOPES``).
"""

from __future__ import annotations

CONVERSATIONS_READ = "conversations:read"
CONVERSATIONS_WRITE = "conversations:write"
ATTACHMENTS_WRITE = "attachments:write"
ADMIN = "admin"

ALL_SCOPES: tuple[str, ...] = (CONVERSATIONS_READ, CONVERSATIONS_WRITE, ATTACHMENTS_WRITE, ADMIN)
DEFAULT_SCOPES = frozenset({CONVERSATIONS_READ, CONVERSATIONS_WRITE, ATTACHMENTS_WRITE})

# Membership.Role value -> scopes a user with that role has.
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "member": DEFAULT_SCOPES,
    "admin": frozenset(ALL_SCOPES),
}

# A view without ``required_scopes`` needs read for safe methods and write otherwise.
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def scope_for_method(method: str) -> str:
    return CONVERSATIONS_READ if method.upper() in SAFE_METHODS else CONVERSATIONS_WRITE


def unknown_scopes(scopes: list[str] | tuple[str, ...] | set[str]) -> list[str]:
    return sorted(set(scopes) - set(ALL_SCOPES))


def effective_key_scopes(stored: list[str] | None) -> frozenset[str]:
    return frozenset(stored) if stored else DEFAULT_SCOPES
