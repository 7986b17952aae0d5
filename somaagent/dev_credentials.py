"""The development credentials ``make run`` creates once (DEV mode only) and prints when ready.

``python manage.py bootstrap_dev`` creates them; ``python -m somaagent.project.devrun``
prints them in its banner with the URL it verified. They are kept in
``var/dev-credentials.txt`` (mode 0600) as shell assignments, so
``. var/dev-credentials.txt`` puts the key in ``$SOMA_DEV_API_KEY``. The URL is
not stored: it depends on the run (``PORT``), and the banner prints it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from somaagent.private_files import write_private

FILE_NAME = "dev-credentials.txt"
HEADER = (
    "# SomaAgent development credentials (DEV mode only). `make run` prints them with the URL\n"
    "# it serves once everything answers. `. var/dev-credentials.txt` sets these variables.\n"
)
_FIELDS = {
    "SOMA_DEV_USER": "user",
    "SOMA_DEV_PASSWORD": "password",
    "SOMA_DEV_TENANT": "tenant",
    "SOMA_DEV_API_KEY": "api_key",
}


@dataclass(frozen=True)
class DevCredentials:
    user: str
    password: str
    tenant: str
    api_key: str


def dev_credentials_path(var_dir: Path) -> Path:
    return var_dir / FILE_NAME


def dev_credentials_read(path: Path) -> DevCredentials | None:
    """The stored credentials, or None when the file is missing or not in this format."""
    try:
        text = path.read_text()
    except OSError:
        return None
    values: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, raw = line.partition("=")
        if sep and name in _FIELDS:
            try:
                parts = shlex.split(raw)
            except ValueError:
                return None
            values[_FIELDS[name]] = parts[0] if parts else ""
    if set(values) != set(_FIELDS.values()) or not values["api_key"]:
        return None
    return DevCredentials(**values)


def dev_credentials_write(path: Path, credentials: DevCredentials) -> None:
    """Write the file readable by its owner only (created 0600, never world-readable)."""
    lines = [f"{name}={shlex.quote(getattr(credentials, field))}" for name, field in _FIELDS.items()]
    write_private(path, HEADER + "\n".join(lines) + "\n")
