"""prometheus-client multiprocess mode: the shared directory, dead processes, worker ports.

One directory per host (``PROMETHEUS_MULTIPROC_DIR``), the same for every
process that should be summed; whoever starts the processes empties it first
(``make run``, the container entrypoint). A process that ends marks itself dead
(``mark_process_dead``) so its ``live*`` gauges stop counting; a process killed
outright cannot, so the collector also skips ``live*`` files of pids that are no
longer running. Counters of dead processes stay: the sum keeps counting.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterable
from typing import Any

from somaagent.process_local import pid_alive

log = logging.getLogger(__name__)


def multiproc_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()


def prepare_multiproc_dir() -> None:
    path = multiproc_dir()
    if path:
        os.makedirs(path, exist_ok=True)


def live_files(path: str) -> list[str]:
    """The directory's files, minus ``live*`` gauge files of processes that are gone."""
    files = []
    for name in glob.glob(os.path.join(path, "*.db")):
        parts = os.path.basename(name)[:-3].split("_")
        if parts[0] == "gauge" and len(parts) >= 3 and parts[1].startswith("live"):
            try:
                if not pid_alive(int(parts[-1])):
                    continue
            except ValueError:
                pass
        files.append(name)
    return files


class LiveMultiProcessCollector:
    """``MultiProcessCollector`` that ignores live gauges of processes killed without a goodbye."""

    def __init__(self, path: str) -> None:
        self.path = path

    def collect(self) -> Iterable[Any]:
        from prometheus_client.multiprocess import MultiProcessCollector

        return MultiProcessCollector.merge(live_files(self.path), accumulate=True)


def mark_dead(pid: int | None = None) -> None:
    """Called when a process ends (Celery child shutdown, web exit)."""
    if not multiproc_dir():
        return
    from prometheus_client import multiprocess

    try:
        multiprocess.mark_process_dead(pid or os.getpid())
    except OSError:
        log.debug("could not remove live gauge files", exc_info=True)
