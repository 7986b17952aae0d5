"""The sandbox's first process: a tiny reaper between the worker and the launch chain.

Run as ``python -I -S reaper.py PARENT_PID -- ARGV...`` (its own process, so
nothing here touches the threaded worker). It dies with the worker
(``PR_SET_PDEATHSIG``), becomes a child subreaper so that processes the
launchers orphan (bubblewrap leaves its PID-1 process to whoever adopts it)
are reaped here at once instead of piling up as zombies that count against
the sandbox uid's process limit, runs ARGV, and exits with its status.
SIGTERM kills the launch chain (and with it the whole sandbox) first.
Standard library only.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
ORPHAN_REAP_SECONDS = 5


def _exit_with(code: int) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        os._exit(code)

    return handler


def main() -> int:
    parent = int(sys.argv[1])
    argv = sys.argv[3:]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the worker died before the prctl took effect
        return 125
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1)
    child = os.fork()
    if child == 0:
        try:
            os.execv(argv[0], argv)
        finally:
            os._exit(127)

    def stop(signum: int, frame: FrameType | None) -> None:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, stop)
    code = 1
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return code
        if pid == child:
            exit_code = os.waitstatus_to_exitcode(status)
            code = 128 - exit_code if exit_code < 0 else exit_code
            # What is left are orphans about to die with their namespace; do not wait forever.
            signal.signal(signal.SIGALRM, _exit_with(code))
            signal.alarm(ORPHAN_REAP_SECONDS)


if __name__ == "__main__":
    sys.exit(main())
