"""The code sandbox: which isolation level is active, chosen once per process.

``SOMA_SANDBOX`` = ``auto`` (bubblewrap, else the rlimits-only level, else
off), ``bwrap``, ``rlimits`` or ``off``. A level is used only after a probe
run proves it starts and has no network; when nothing qualifies, code is
refused — it never runs in the worker process.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings

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

# The probe must print exactly this: it ran, it sees no interface but its own loopback, and
# the outside world is unreachable (ENETUNREACH), not merely silent.
PROBE_CODE = """
import errno, socket
names = sorted(name for _, name in socket.if_nameindex())
s = socket.socket()
s.settimeout(2)
try:
    s.connect(("192.0.2.1", 9))
    print("net-open")
except OSError as e:
    if names == ["lo"] and e.errno == errno.ENETUNREACH:
        print("net-denied")
    else:
        print(f"net-open:{names}:{e.errno}")
"""


def probe(candidate: SandboxPort) -> str | None:
    """None if ``candidate`` runs code without network; else why not."""
    limits = SandboxLimits(
        cpu_seconds=5,
        wall_seconds=20,
        memory_bytes=512 * 1024 * 1024,
        max_processes=32,
        max_open_files=64,
        max_output_bytes=4096,
        tmpfs_bytes=8 * 1024 * 1024,
    )
    try:
        result = candidate.run_python(code=PROBE_CODE, limits=limits)
    except (SandboxUnavailable, OSError) as exc:
        return str(exc)
    if result.exit_status != 0 or result.stdout.strip() != "net-denied":
        return (
            f"probe failed (exit {result.exit_status}, stdout {result.stdout.strip()[:100]!r}, "
            f"stderr {result.stderr.strip()[-300:]!r})"
        )
    return None


def choose(*, mode: str, python: str, uids: range) -> SandboxPort:
    reasons: list[str] = []
    if mode not in MODES:
        return DisabledSandbox(f"SOMA_SANDBOX={mode!r} is not one of {', '.join(MODES)}")
    if mode == OFF:
        return DisabledSandbox("SOMA_SANDBOX=off")
    candidates: list[SandboxPort] = []
    if mode in ("auto", BWRAP):
        candidates.append(BwrapSandbox(python=python, uids=uids))
    if mode in ("auto", RLIMITS):
        candidates.append(RlimitsSandbox(python=python, uids=uids))
    for candidate in candidates:
        why = probe(candidate)
        if why is None:
            return candidate
        reasons.append(f"{candidate.level}: {why}")
    return DisabledSandbox("; ".join(reasons))


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
        log.warning("code sandbox at the WEAKER level", extra=extra)
    else:
        log.error("code sandbox unavailable: code is refused", extra=extra)
    return chosen


def sandbox_reset() -> None:
    """Forget the choice (tests, or after installing bubblewrap without a restart)."""
    global _chosen
    with _lock:
        _chosen = None


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
]
