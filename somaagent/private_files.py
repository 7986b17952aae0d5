"""Files only the service's own user may read: ``var/`` at 0700, secrets at 0600 from their first byte.

``var/`` holds the secret key (also the JWT signing key), the Fernet key, the
development credentials, the SQLite file and the embedded Redis socket. A file
is never written at the umask's mode and tightened afterwards: it is created
by ``os.open(O_CREAT | O_EXCL, 0o600)`` under a unique temporary name, filled,
synced and renamed into place, so no reader ever sees it at 0644 or half written.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed; make the directory itself 0700."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != PRIVATE_DIR_MODE:
        os.chmod(path, PRIVATE_DIR_MODE)  # a var/ left at 0755 by an older version
    return path


def tighten(path: Path) -> None:
    """An existing file readable by group or others becomes 0600."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        os.chmod(path, mode & 0o700)


def _create(path: Path) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    return os.open(path, flags, PRIVATE_FILE_MODE)


def write_private(path: Path, text: str, *, keep_existing: bool = False) -> bool:
    """Write ``text`` to ``path`` atomically at 0600. With ``keep_existing`` an existing file
    wins (for a secret generated once by whichever process comes first): returns False."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = _create(tmp)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if not keep_existing:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)  # fails if another process created it first
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


def create_private_file(path: Path) -> None:
    """An empty 0600 file at ``path`` unless one exists (then only tightened): e.g. the SQLite
    database, before SQLite creates it at the umask's mode (its -wal and -shm copy this mode)."""
    private_dir(path.parent)
    try:
        os.close(_create(path))
    except FileExistsError:
        tighten(path)
