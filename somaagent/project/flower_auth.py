"""Flower refuses to start without a real password outside DEV.

Flower takes ``FLOWER_BASIC_AUTH`` (``user:password[,user:password…]``) as
given: unset means no authentication at all, and compose passes an unset
variable as an empty string, which Flower accepts as a credential. Every way
of starting it (Procfile, compose, Kubernetes, ``make run``) goes through
``celery -A somaagent flower``, which imports the Celery app: the app checks
here before Flower reads its options, and refuses with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from somaagent.environment import ConfigurationError, deployment_mode

MIN_PASSWORD_CHARS = 12
PLACEHOLDERS = ("change-me", "changeme", "change_me", "password", "secret", "admin", "flower")


def is_flower_command(argv: Sequence[str]) -> bool:
    """``celery … flower …`` (the celery script or ``python -m celery``)."""
    if not argv:
        return False
    launcher = Path(argv[0])
    return (launcher.name == "celery" or launcher.parent.name == "celery") and "flower" in argv[1:]


def flower_auth_problems(*, mode: str, basic_auth: str | None) -> list[str]:
    """What is wrong with ``FLOWER_BASIC_AUTH`` for ``mode`` (DEV accepts anything: Flower
    listens on 127.0.0.1 there)."""
    if mode == "DEV":
        return []
    if not basic_auth or not basic_auth.strip():
        return [
            f"FLOWER_BASIC_AUTH is not set or empty: Flower would be open to anyone in {mode} mode; "
            f"set it to user:password (a password of {MIN_PASSWORD_CHARS}+ random characters)"
        ]
    problems = []
    for position, entry in enumerate(basic_auth.split(","), start=1):
        user, sep, password = entry.partition(":")
        where = f"FLOWER_BASIC_AUTH entry #{position}"
        if not sep or not user.strip() or not password:
            problems.append(f"{where} is not user:password with a non-empty user and password")
        elif len(password) < MIN_PASSWORD_CHARS or any(p in password.lower() for p in PLACEHOLDERS):
            problems.append(
                f"{where} has a weak or placeholder password: use {MIN_PASSWORD_CHARS}+ random characters"
            )
    return problems


def check_flower_start(argv: Sequence[str]) -> None:
    """Raise ConfigurationError naming each problem when ``argv`` starts Flower unprotected."""
    if not is_flower_command(argv):
        return
    mode = deployment_mode()
    problems = flower_auth_problems(mode=mode, basic_auth=os.environ.get("FLOWER_BASIC_AUTH"))
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConfigurationError(f"Flower refuses to start in {mode} mode:\n{lines}")
