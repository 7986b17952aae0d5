"""The code sandbox: which isolation level is active, chosen once per process.

``SOMA_SANDBOX`` = ``auto`` or ``bwrap`` (bubblewrap, else off), ``rlimits``
(the weaker level, only when the operator names it: no filesystem isolation)
or ``off``. A level is used only after a probe run proves what it promises:
every level, that it starts and has no network; ``bwrap``, also a private
filesystem view (no project directory, ``var/``, sockets or host ``/tmp``, and
no writable place but its own tmpfs). When nothing qualifies, code is
refused — it never runs in the worker process, nor at a weaker level that
nobody asked for — and the ``python`` tool is not offered to the model.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
from pathlib import Path

from django.conf import settings

from somaagent.paths import BASE_DIR, VAR_DIR
from tools.sandbox.adapters import BwrapSandbox, DisabledSandbox, RlimitsSandbox
from tools.sandbox.port import (
    BWRAP,
    OFF,
    RLIMITS,
    SandboxLimits,
    SandboxPort,
    SandboxResult,
    SandboxUnavailable,
)

log = logging.getLogger(__name__)

MODES = ("auto", BWRAP, RLIMITS, OFF)
NO_ISOLATION = (
    "the python tool is disabled: no proven isolation. Install bubblewrap (apt-get install bubblewrap) "
    "and restart the workers (SOMA_SANDBOX=rlimits would run code WITHOUT filesystem isolation: unsafe)"
)

# The probe prints one line per finding and "ok" at the end. Network: it sees no interface but
# its own loopback and the outside world is unreachable (ENETUNREACH), not merely silent.
# Filesystem (when asked): none of the host paths it is given exists, no unix socket is in
# sight, and no directory outside its private /work and /tmp takes a new file.
_PROBE = """
import errno, json, os, socket, stat
hidden, check_fs = json.loads(%r)
names = sorted(name for _, name in socket.if_nameindex())
s = socket.socket()
s.settimeout(2)
try:
    s.connect(("192.0.2.1", 9))
    print("net-open")
except OSError as e:
    if names != ["lo"] or e.errno != errno.ENETUNREACH:
        print(f"net-open:{names}:{e.errno}")
if check_fs:
    for path in hidden:
        if os.path.lexists(path):
            print("visible:" + path)
    seen = 0
    skip = {"/proc", "/sys", "/usr", "/work"}
    for top in sorted(os.listdir("/")):
        start = "/" + top
        if start in skip or os.path.islink(start):
            continue
        for root, dirs, files in os.walk(start):
            for name in dirs + files:
                seen += 1
                full = os.path.join(root, name)
                try:
                    if stat.S_ISSOCK(os.lstat(full).st_mode):
                        print("socket:" + full)
                except OSError:
                    pass
            if seen > 20000:
                print("too-many-files:" + start)
                break
    for place in ["/", "/usr", "/dev", "/dev/shm", "/run", "/var/tmp"]:
        try:
            with open(os.path.join(place, ".soma-probe"), "x") as f:
                f.write("x")
            print("writable:" + place)
        except OSError:
            pass
print("ok")
"""


def hidden_paths(marker: Path) -> list[str]:
    """Host paths the code must not see: the project, ``var/`` (secrets, SQLite, the embedded
    Redis socket), the host's /tmp (``marker`` is a file there) and the usual homes of sockets
    and credentials."""
    return [str(BASE_DIR), str(VAR_DIR), str(marker), "/run", "/var", "/home", "/root", "/etc"]


def probe(candidate: SandboxPort, *, isolation: bool = True) -> str | None:
    """None if ``candidate`` runs code without network (and, with ``isolation``, in a private
    filesystem view); else why not."""
    limits = SandboxLimits(
        cpu_seconds=5,
        wall_seconds=20,
        memory_bytes=512 * 1024 * 1024,
        max_processes=32,
        max_open_files=64,
        max_output_bytes=4096,
        tmpfs_bytes=8 * 1024 * 1024,
    )
    with tempfile.NamedTemporaryFile(prefix="soma-sandbox-probe-") as marker:
        code = _PROBE % json.dumps([hidden_paths(Path(marker.name)), isolation])
        try:
            result = candidate.run_python(code=code, limits=limits)
        except (SandboxUnavailable, OSError) as exc:
            return str(exc)
    findings = result.stdout.split()
    if result.exit_status != 0 or findings != ["ok"]:
        return (
            f"probe failed (exit {result.exit_status}, found {' '.join(findings)[:300]!r}, "
            f"stderr {result.stderr.strip()[-300:]!r})"
        )
    return None


def choose(*, mode: str, python: str, uids: range) -> SandboxPort:
    """The level ``mode`` allows, proven by a probe; otherwise a sandbox that refuses code.
    ``auto`` never falls back to ``rlimits``: only an operator who names it gets it."""
    if mode not in MODES:
        return DisabledSandbox(f"SOMA_SANDBOX={mode!r} is not one of {', '.join(MODES)}")
    if mode == OFF:
        return DisabledSandbox("SOMA_SANDBOX=off")
    candidate: SandboxPort
    if mode == RLIMITS:
        candidate = RlimitsSandbox(python=python, uids=uids)
        why = probe(candidate, isolation=False)
    else:
        candidate = BwrapSandbox(python=python, uids=uids)
        why = probe(candidate, isolation=True)
    if why is None:
        return candidate
    if candidate.level == BWRAP:
        return DisabledSandbox(f"{NO_ISOLATION}. Probe of {candidate.level}: {why}")
    return DisabledSandbox(f"the python tool is disabled: probe of {candidate.level}: {why}")


STRONGEST = {"auto": BWRAP, BWRAP: BWRAP, RLIMITS: RLIMITS, OFF: OFF}
RETRY_WEAKER_AFTER_SECONDS = 60.0
_lock = threading.Lock()
_chosen: tuple[SandboxPort, float] | None = None  # (port, monotonic time to choose again)


def sandbox() -> SandboxPort:
    """The active sandbox. The strongest level the mode allows is kept for the process's life;
    a weaker one (or off) is chosen again a minute later, so a transient probe failure does not
    downgrade a worker for good."""
    global _chosen
    now = time.monotonic()
    if _chosen is not None and now < _chosen[1]:
        return _chosen[0]
    with _lock:
        if _chosen is not None and now < _chosen[1]:
            return _chosen[0]
        cfg = settings.SOMA.tools
        uids = range(cfg.sandbox_uid, cfg.sandbox_uid + max(1, cfg.sandbox_uid_count))
        chosen = choose(mode=cfg.sandbox_mode, python=cfg.sandbox_python, uids=uids)
        final = chosen.level == STRONGEST.get(cfg.sandbox_mode, OFF) or cfg.sandbox_mode not in MODES
        _chosen = (chosen, float("inf") if final else now + RETRY_WEAKER_AFTER_SECONDS)
    extra = {"isolation": chosen.level, "detail": chosen.detail}
    if chosen.level == BWRAP:
        log.info("code sandbox active", extra=extra)
    elif chosen.level == RLIMITS:
        log.warning("code sandbox at the WEAKER level (SOMA_SANDBOX=rlimits: unsafe)", extra=extra)
    else:
        log.error("code sandbox unavailable: code is refused", extra=extra)
    return chosen


def sandbox_reset() -> None:
    """Forget the choice (tests, or after installing bubblewrap without a restart)."""
    global _chosen
    with _lock:
        _chosen = None


def unavailable() -> str | None:
    """Why code cannot run in this process (the ``python`` tool is then not offered), or None."""
    active = sandbox()
    return active.detail if active.level == OFF else None


def run_python(*, code: str, limits: SandboxLimits | None = None) -> SandboxResult:
    return sandbox().run_python(code=code, limits=limits or SandboxLimits.from_settings())


__all__ = [
    "BWRAP",
    "OFF",
    "RLIMITS",
    "SandboxLimits",
    "SandboxPort",
    "SandboxResult",
    "SandboxUnavailable",
    "choose",
    "run_python",
    "sandbox",
    "sandbox_reset",
    "unavailable",
]
