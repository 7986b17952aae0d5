"""var/ is 0700 and every secret in it is 0600 from the moment it exists (issue 14, item 7)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from somaagent import environment as config
from somaagent.dev_credentials import DevCredentials, dev_credentials_path, dev_credentials_write
from tests.live import ROOT

# What the audit hook below saw: file name -> every mode it had at any audited moment.
_watch: dict[str, Any] = {"dir": None, "busy": False, "seen": {}}


def _look(event: str, args: tuple[Any, ...]) -> None:
    directory = _watch["dir"]
    if directory is None or _watch["busy"]:
        return
    _watch["busy"] = True
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                mode = stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode)
                _watch["seen"].setdefault(entry.name, set()).add(mode)
    except OSError:
        pass
    finally:
        _watch["busy"] = False


sys.addaudithook(_look)


@contextmanager
def every_mode_seen(directory: Path) -> Iterator[dict[str, set[int]]]:
    """At every audited event (each open, chmod, rename, link …) record the modes of the files in
    ``directory``: a file written at the umask's mode and tightened afterwards shows up at 0644."""
    old_umask = os.umask(0o022)
    _watch["seen"] = {}
    _watch["dir"] = str(directory)
    try:
        yield _watch["seen"]
    finally:
        _watch["dir"] = None
        os.umask(old_umask)


def test_generated_secrets_are_never_readable_by_others(tmp_path, monkeypatch) -> None:
    var = tmp_path / "var"
    monkeypatch.setattr(config, "VAR_DIR", var)
    monkeypatch.delenv("DJANGO_SECRET_KEY", raising=False)
    monkeypatch.delenv("SOMA_FERNET_KEYS", raising=False)
    var.mkdir(mode=0o755)
    with every_mode_seen(var) as seen:
        key = config.secret_key("DEV")
        fernet = config.fernet_keys("DEV")
        dev_credentials_write(
            dev_credentials_path(var), DevCredentials(user="dev", password="pw", tenant="t", api_key="k")
        )
    assert config.secret_key("DEV") == key and config.fernet_keys("DEV") == fernet  # generated once
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    assert {"secret_key", "fernet_key", "dev-credentials.txt"} <= set(seen)
    assert {name: modes for name, modes in seen.items() if modes != {0o600}} == {}
    assert sorted(p.name for p in var.iterdir()) == ["dev-credentials.txt", "fernet_key", "secret_key"]


def test_an_older_secret_left_world_readable_is_tightened(tmp_path, monkeypatch) -> None:
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    (var / "secret_key").write_text("x" * 60)
    (var / "secret_key").chmod(0o644)
    monkeypatch.setattr(config, "VAR_DIR", var)
    monkeypatch.delenv("DJANGO_SECRET_KEY", raising=False)
    assert config.secret_key("DEV") == "x" * 60
    assert stat.S_IMODE((var / "secret_key").stat().st_mode) == 0o600
    assert stat.S_IMODE(var.stat().st_mode) == 0o700


def test_a_fresh_start_creates_var_and_the_sqlite_file_private(tmp_path) -> None:
    var = tmp_path / "var"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "DJANGO_SECRET_KEY", "SOMA_FERNET_KEYS", "SOMA_SQLITE_PATH")
    }
    # A Redis URL keeps the embedded server out of this throwaway var/ (settings do not connect).
    env.update({"SOMA_VAR_DIR": str(var), "REDIS_URL": "redis://127.0.0.1:6379/15"})
    code = "import django; django.setup(); from django.db import connection; connection.ensure_connection()"
    result = subprocess.run(
        ["sh", "-c", f'umask 000; exec "{sys.executable}" -c "{code}"'],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "somaagent.settings", "SOMA_DEPLOYMENT_MODE": "DEV"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in var.iterdir()}
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    assert modes["somaagent.sqlite3"] == 0o600 and modes["secret_key"] == 0o600, modes
    assert {name: mode for name, mode in modes.items() if mode & 0o077} == {}


@pytest.mark.skipif(os.geteuid() != 0, reason="needs a second uid to read as")
def test_another_user_cannot_open_anything_in_var(tmp_path, monkeypatch) -> None:
    var = tmp_path / "var"
    monkeypatch.setattr(config, "VAR_DIR", var)
    monkeypatch.delenv("DJANGO_SECRET_KEY", raising=False)
    config.secret_key("DEV")
    tmp_path.chmod(0o755)
    result = subprocess.run(
        ["setpriv", "--reuid=1000001", "--regid=1000001", "--clear-groups", "cat", str(var / "secret_key")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0 and "Permission denied" in result.stderr
