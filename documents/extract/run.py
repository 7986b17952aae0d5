"""Run the parser (child.py) in its own process, bounded in CPU, memory and wall time.

The worker never parses an uploaded file itself: a PDF bomb, a zip bomb in a
DOCX, deeply nested objects or a parser that loops would otherwise take the
worker's memory or a thread for good. ``prlimit`` sets the child's CPU seconds
(SIGXCPU, then SIGKILL a second later), address space, open files and a zero
file-size limit (it writes nothing), then execs the interpreter in isolated mode
(``-I``: no environment, no user site). The child runs in its own session; at
the wall time the whole group is killed. Whatever happens ends as an
``Extracted`` with either segments or a reason a person can read.

This is a smaller cousin of tools/sandbox (which confines *code* further, in
namespaces, as another uid): documents cannot import tools (tools import
documents for the ``document_search`` tool), and a parser of our own needs
limits, not a private filesystem.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

CHILD = str(Path(__file__).with_name("child.py"))
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"}


@dataclass(frozen=True)
class ParseLimits:
    cpu_seconds: int = 30
    wall_seconds: float = 60.0
    memory_bytes: int = 768 * 1024 * 1024
    max_chars: int = 5_000_000


@dataclass
class Extracted:
    segments: list[tuple[int | None, str, str]] = field(default_factory=list)
    pages: int = 0
    error: str = ""
    duration_ms: int = 0


def _prlimit(limits: ParseLimits) -> list[str]:
    tool = shutil.which("prlimit", path=ENV["PATH"])
    if tool is None:
        raise RuntimeError("the helper binary 'prlimit' (util-linux) is not installed")
    cpu = max(1, limits.cpu_seconds)
    return [
        tool,
        f"--cpu={cpu}:{cpu + 1}",
        f"--as={limits.memory_bytes}",
        "--nofile=32",
        "--fsize=0",
        "--core=0",
    ]


def extract(*, path: str, kind: str, limits: ParseLimits) -> Extracted:
    """The text segments of the file at ``path`` (a ``child.KINDS`` kind), or why not."""
    argv = [*_prlimit(limits), "--", sys.executable, "-I", CHILD, path, kind, str(limits.max_chars)]
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
        cwd="/",
        close_fds=True,
        start_new_session=True,
    )
    timed_out = False
    try:
        out, err = proc.communicate(timeout=limits.wall_seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc.pid)
        out, err = proc.communicate()
    finally:
        if proc.poll() is None:
            _kill_group(proc.pid)
            proc.wait()
    elapsed = int((time.monotonic() - started) * 1000)
    if timed_out:
        return Extracted(
            error=f"Reading the file took longer than {limits.wall_seconds:g} s.", duration_ms=elapsed
        )
    return _result(proc.returncode, out, err, limits=limits, duration_ms=elapsed)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _result(code: int, out: bytes, err: bytes, *, limits: ParseLimits, duration_ms: int) -> Extracted:
    if code in (-signal.SIGXCPU, -signal.SIGKILL, 128 + signal.SIGXCPU, 128 + signal.SIGKILL):
        return Extracted(
            error=f"Reading the file used more than {limits.cpu_seconds} s of CPU.", duration_ms=duration_ms
        )
    try:
        doc = json.loads(out) if out else {}
    except ValueError:
        doc = {}
    if not isinstance(doc, dict) or not doc:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit status {code}"]
        if "MemoryError" in err.decode("utf-8", "replace") or code in (-signal.SIGSEGV, -signal.SIGABRT):
            return Extracted(
                error="Reading the file needed more memory than allowed.", duration_ms=duration_ms
            )
        return Extracted(error=f"The parser stopped ({tail[0][:200]}).", duration_ms=duration_ms)
    if doc.get("error"):
        return Extracted(error=str(doc["error"])[:500], duration_ms=duration_ms)
    segments = [
        (int(page) if isinstance(page, int) else None, str(heading), str(text))
        for page, heading, text in doc.get("segments", [])
    ]
    return Extracted(segments=segments, pages=int(doc.get("pages") or 0), duration_ms=duration_ms)
