"""The sandbox port: run untrusted Python in a separate, confined process (SPEC §10)."""

from __future__ import annotations

import signal
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from django.conf import settings

# Isolation levels, strongest first. ``off`` refuses to run code at all.
BWRAP = "bwrap"
RLIMITS = "rlimits"
OFF = "off"


class SandboxUnavailable(Exception):
    """No acceptable isolation is available: code is refused, never run unconfined."""


@dataclass(frozen=True)
class SandboxLimits:
    cpu_seconds: int
    wall_seconds: float
    memory_bytes: int
    max_processes: int
    max_open_files: int
    max_output_bytes: int
    tmpfs_bytes: int

    @classmethod
    def from_settings(cls, *, wall_seconds: float | None = None) -> SandboxLimits:
        cfg = settings.SOMA.tools
        return cls(
            cpu_seconds=cfg.sandbox_cpu_seconds,
            wall_seconds=wall_seconds if wall_seconds is not None else cfg.sandbox_wall_seconds,
            memory_bytes=cfg.sandbox_memory_mb * 1024 * 1024,
            max_processes=cfg.sandbox_max_processes,
            max_open_files=cfg.sandbox_max_open_files,
            max_output_bytes=cfg.sandbox_max_output_bytes,
            tmpfs_bytes=cfg.sandbox_tmpfs_mb * 1024 * 1024,
        )


@dataclass
class SandboxResult:
    stdout: str
    stderr: str
    exit_status: int | None
    timed_out: bool
    stdout_truncated: bool
    stderr_truncated: bool
    stdout_bytes: int
    stderr_bytes: int
    duration_ms: int
    isolation: str
    signal: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def signal_of(exit_status: int | None) -> str | None:
    """Name the signal behind a ``128 + n`` exit status (how bwrap and shells report one)."""
    if exit_status is None:
        return None
    if exit_status < 0:
        number = -exit_status
    elif 128 < exit_status < 128 + 65:
        number = exit_status - 128
    else:
        return None
    try:
        return signal.Signals(number).name
    except ValueError:
        return None


class SandboxPort(Protocol):
    level: str
    detail: str

    def run_python(self, *, code: str, limits: SandboxLimits) -> SandboxResult:
        """Run ``code`` confined; raise SandboxUnavailable if it cannot be confined."""
