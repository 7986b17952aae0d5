"""What the live test processes leave on disk: one temporary directory per test run.

Every process of one run (the xdist workers too) shares the run id that
``tests.env_setup`` sets, so they share the directory: the processes' logs and
their Prometheus multiprocess directories go there. It is removed when the run
passes and kept, with its path printed, when something failed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

RUN_ID = os.environ.get("SOMA_TEST_RUN") or f"pid{os.getpid()}"
LOG_DIR = Path(tempfile.gettempdir()) / f"soma-test-logs-{RUN_ID}"


def run_tmpdir(prefix: str) -> str:
    """A new directory inside the run's directory (removed with it)."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    return tempfile.mkdtemp(prefix=prefix, dir=LOG_DIR)


def run_logs_finish(*, passed: bool) -> str | None:
    """Remove the run's directory if it passed; otherwise say where it is (None: nothing to say)."""
    if not LOG_DIR.exists():
        return None
    if passed:
        shutil.rmtree(LOG_DIR, ignore_errors=True)
        return None
    return f"Logs of the processes this test run started: {LOG_DIR}"
