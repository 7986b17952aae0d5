"""Sandbox adapters: bubblewrap (full), rlimits-only (weaker, still no network), disabled.

Every adapter launches the code through helper binaries, never in the calling
process: ``setpriv`` drops to an unprivileged uid (when the worker is root),
picked at random from a range of otherwise unused uids so that concurrent
sandboxes do not share one process limit, with no capabilities and
``no_new_privs``; ``prlimit`` sets CPU, address
space, process, open file and file size limits; then ``bwrap`` (or, at the
weaker level, ``unshare``) builds the namespaces and execs the interpreter
with an empty environment.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

from tools.sandbox.port import BWRAP, OFF, RLIMITS, SandboxLimits, SandboxResult, SandboxUnavailable
from tools.sandbox.process import run_supervised

WORKDIR = "/work"
SANDBOX_ENV = {"PATH": "/usr/bin:/bin", "HOME": WORKDIR, "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
# Top-level system paths the interpreter may need: symlinks are recreated, directories bound read-only.
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What name resolution and TLS need, bound only for a program that was granted the network.
NETWORK_FILES = ("/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/ssl", "/etc/ca-certificates")


def _tool(name: str) -> str:
    path = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        raise SandboxUnavailable(f"the helper binary {name!r} is not installed")
    return path


REAPER = str(Path(__file__).with_name("reaper.py"))


def _reaper() -> list[str]:
    """The first process of every sandbox (see reaper.py); the worker's own interpreter runs it."""
    return [sys.executable, "-I", "-S", REAPER, str(os.getpid()), "--"]


def _describe(uids: range) -> str:
    return f"uid {uids.start}" if len(uids) == 1 else f"a uid in {uids.start}-{uids.stop - 1}"


def _drop_privileges(uid: int) -> list[str]:
    argv = [_tool("setpriv"), "--no-new-privs"]
    if os.geteuid() == 0:
        argv += [
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ]
    return [*argv, "--"]


def _rlimits(limits: SandboxLimits) -> list[str]:
    cpu = max(1, limits.cpu_seconds)
    return [
        _tool("prlimit"),
        f"--cpu={cpu}:{cpu + 1}",  # SIGXCPU at the soft limit, SIGKILL a second later
        f"--as={limits.memory_bytes}",
        f"--nproc={limits.max_processes}",
        f"--nofile={limits.max_open_files}",
        f"--fsize={limits.tmpfs_bytes}",
        "--core=0",
        "--",
    ]


class BwrapSandbox:
    """Namespaces for everything (no network), read-only system dirs, a private size-capped tmpfs."""

    level = BWRAP

    def __init__(self, *, python: str, uids: range) -> None:
        self.python = python
        self.uids = uids
        self.detail = (
            "bubblewrap: user/pid/net/ipc/uts/mount namespaces, no network, read-only /usr, "
            f"private tmpfs {WORKDIR}, empty environment, {_describe(uids)}, rlimits via prlimit"
        )

    def _namespace(self, *, limits: SandboxLimits, share_net: bool = False) -> list[str]:
        """The launch chain up to bwrap's filesystem view: system dirs read-only, private tmpfs."""
        uid = random.choice(self.uids)
        argv = [*_reaper(), *_drop_privileges(uid), *_rlimits(limits), _tool("bwrap")]
        argv += ["--unshare-all", "--unshare-user", "--disable-userns", "--hostname", "sandbox"]
        if share_net:
            argv += ["--share-net"]
        argv += ["--die-with-parent", "--new-session"]
        for path in SYSTEM_PATHS:
            if os.path.islink(path):
                argv += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                argv += ["--ro-bind", path, path]
        if share_net:
            for path in NETWORK_FILES:
                if os.path.exists(path):
                    argv += ["--ro-bind", path, path]
        argv += ["--proc", "/proc", "--dev", "/dev"]
        argv += ["--size", str(limits.tmpfs_bytes), "--tmpfs", WORKDIR]
        argv += ["--size", str(min(limits.tmpfs_bytes, 16 * 1024 * 1024)), "--tmpfs", "/tmp"]
        return argv

    def argv(self, *, limits: SandboxLimits, code_fd: int) -> list[str]:
        argv = [*self._namespace(limits=limits), "--clearenv"]
        for name, value in SANDBOX_ENV.items():
            argv += ["--setenv", name, value]
        argv += ["--file", str(code_fd), f"{WORKDIR}/main.py"]
        argv += ["--remount-ro", "/", "--remount-ro", "/dev", "--chdir", WORKDIR]
        return [*argv, "--", self.python, "-I", f"{WORKDIR}/main.py"]

    def command_argv(
        self,
        *,
        command: list[str],
        limits: SandboxLimits,
        read_only: list[tuple[str, str]],
        share_net: bool,
        unset_env: list[str],
    ) -> list[str]:
        """A long-running program (a local MCP server) in the same confinement as code: only the
        ``read_only`` (host path, sandbox path) pairs are added to the view, and the network only
        when ``share_net``. The environment it is launched with reaches the program, less
        ``unset_env``: secrets travel there, never in an argv that ``ps`` shows."""
        argv = self._namespace(limits=limits, share_net=share_net)
        for name in unset_env:
            argv += ["--unsetenv", name]
        for name, value in SANDBOX_ENV.items():
            argv += ["--setenv", name, value]
        for source, target in read_only:
            argv += ["--ro-bind", source, target]
        argv += ["--remount-ro", "/", "--remount-ro", "/dev", "--chdir", WORKDIR]
        return [*argv, "--", *command]

    def run_python(self, *, code: str, limits: SandboxLimits) -> SandboxResult:
        with tempfile.TemporaryFile() as source:
            source.write(code.encode())
            source.flush()
            source.seek(0)
            fd = source.fileno()
            return run_supervised(
                self.argv(limits=limits, code_fd=fd), limits=limits, isolation=self.level, pass_fds=(fd,)
            )


class RlimitsSandbox:
    """The weaker level: an unprivileged process with rlimits, no network and its own PID namespace.

    The host filesystem stays visible (as the sandbox uid's Unix permissions
    allow): there is no read-only view and no private /tmp. Used only when
    bubblewrap is missing and ``unshare`` can still take the network away.
    """

    level = RLIMITS

    def __init__(self, *, python: str, uids: range) -> None:
        self.python = python
        self.uids = uids
        self.detail = (
            f"rlimits-only: unprivileged process ({_describe(uids)}), rlimits via prlimit, "
            "no network and own PID namespace via unshare; "
            "NO filesystem isolation (install bubblewrap for that)"
        )

    def argv(self, *, limits: SandboxLimits, uid: int) -> list[str]:
        unshare = [
            _tool("unshare"),
            "--user",
            "--net",
            "--pid",
            "--fork",
            "--kill-child",
            "--mount",
            "--mount-proc",
            "--ipc",
            "--uts",
            "--",
        ]
        return [
            *_reaper(),
            *_drop_privileges(uid),
            *_rlimits(limits),
            *unshare,
            "/usr/bin/env",
            "-i",
            *[f"{k}={v}" for k, v in SANDBOX_ENV.items() if k != "HOME"],
            # A shell as the namespace's first process turns a death by signal into the usual
            # 128+n exit status (unshare itself reports it badly).
            "/bin/sh",
            "-c",
            '"$@"; exit $?',
            "sh",
            self.python,
            "-I",
            "main.py",
        ]

    def run_python(self, *, code: str, limits: SandboxLimits) -> SandboxResult:
        workdir = Path(tempfile.mkdtemp(prefix="soma-sandbox-"))
        uid = random.choice(self.uids)
        try:
            script = workdir / "main.py"
            script.write_text(code)
            if os.geteuid() == 0:
                os.chown(workdir, uid, uid)
                os.chown(script, uid, uid)
            argv = self.argv(limits=limits, uid=uid)
            return run_supervised(argv, limits=limits, isolation=self.level, cwd=str(workdir))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


class DisabledSandbox:
    level = OFF

    def __init__(self, reason: str) -> None:
        self.detail = f"code execution disabled: {reason}"

    def run_python(self, *, code: str, limits: SandboxLimits) -> SandboxResult:
        raise SandboxUnavailable(self.detail)
