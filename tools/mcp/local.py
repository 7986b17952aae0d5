"""Local (stdio) MCP servers: launched only inside the bubblewrap sandbox, never without it.

The server gets what the ``python`` tool's code gets (no network, no project files, a private
tmpfs, an unprivileged uid, CPU/memory/process/file limits), plus only what its entry grants:
read-only host paths (its code), the worker's installed Python packages read-only at
``/opt/soma/site-packages`` (for servers written with the mcp SDK), and the network. Fail closed:
when the process's sandbox is not at the bubblewrap level, the server is refused with the reason.
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

from mcp.client.stdio import DEFAULT_INHERITED_ENV_VARS, StdioServerParameters

from tools.mcp.spec import ServerSpec
from tools.sandbox import BWRAP, SandboxLimits, sandbox
from tools.sandbox.adapters import BwrapSandbox
from tools.sandbox.process import LAUNCH_ENV

SITE_PACKAGES_TARGET = "/opt/soma/site-packages"


class LocalServerRefused(Exception):
    """The local server cannot be started confined; it is not started at all."""


def site_packages() -> str:
    return str(Path(sysconfig.get_paths()["purelib"]).resolve())


def closed_to_others(path: Path) -> Path | None:
    """The first directory on the way to ``path`` that other users cannot enter (the sandbox runs
    as an unprivileged uid, which cannot bind what it cannot reach), or None."""
    for step in [*reversed(path.parents), path]:
        try:
            mode = step.stat().st_mode
        except OSError:
            return step
        if step.is_dir() and not mode & 0o001:
            return step
    return None


def stdio_parameters(spec: ServerSpec) -> StdioServerParameters:
    """How to launch ``spec``'s server in the sandbox (its environment carries its secrets)."""
    active = sandbox()
    if active.level != BWRAP or not isinstance(active, BwrapSandbox):
        raise LocalServerRefused(
            f"the local MCP server {spec.name!r} needs the bubblewrap sandbox, which is not active here "
            f"({active.detail}); it is never run unconfined"
        )
    read_only = [(str(Path(p).resolve()), p) for p in spec.read_only_paths]
    if spec.python_packages:
        read_only.append((site_packages(), SITE_PACKAGES_TARGET))
    for source, _ in read_only:
        if not Path(source).exists():
            raise LocalServerRefused(
                f"the path {source!r} granted to {spec.name!r} does not exist on this worker"
            )
        closed = closed_to_others(Path(source)) if os.geteuid() == 0 else None
        if closed is not None:
            raise LocalServerRefused(
                f"the sandbox's unprivileged uid cannot reach {source!r} granted to {spec.name!r}: "
                f"{str(closed)!r} is closed to other users (chmod o+x on the way, o+rx on the directory)"
            )
    env = dict(spec.secrets.env)
    if spec.python_packages:
        env["PYTHONPATH"] = SITE_PACKAGES_TARGET
    limits = SandboxLimits.from_settings()  # no wall time: the client ends the process with the session
    argv = active.command_argv(
        command=list(spec.command),
        limits=limits,
        read_only=read_only,
        share_net=spec.allow_network,
        unset_env=[name for name in DEFAULT_INHERITED_ENV_VARS if name not in ("PATH", "HOME")],
    )
    return StdioServerParameters(command=argv[0], args=argv[1:], env={**LAUNCH_ENV, **env}, cwd="/")
