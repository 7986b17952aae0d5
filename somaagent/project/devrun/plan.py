"""What ``make run`` starts, and where: a pure function of the environment and the arguments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from somaagent.local_llm import DEFAULT_PORT as LLM_PORT

DEFAULT_PORT = 8000
WEB = "web"
LLM = "llm"


class PlanError(ValueError):
    """The run cannot start as asked; the message says what to change."""


@dataclass(frozen=True)
class RunPlan:
    port: int
    processes: tuple[str, ...]  # the web first: honcho gives it the base port
    local_model_port: int | None  # set when the `llm` process serves the embedded model
    embedded_redis: bool
    env: dict[str, str]  # honcho's environment

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def honcho_argv(self, bin_dir: Path, procfile: Path) -> list[str]:
        return [str(bin_dir / "honcho"), "start", "-f", str(procfile), "-p", str(self.port), *self.processes]


def _port(raw: str, name: str, default: int) -> int:
    if not raw.strip():
        return default
    try:
        port = int(raw)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise PlanError(f"{name} must be a TCP port number (1-65535), got {raw!r}")
    return port


def run_plan(
    environ: Mapping[str, str],
    *,
    processes: Sequence[str],
    local_model: bool,
    local_model_installed: bool,
    metrics_dir: Path,
) -> RunPlan:
    """``PORT`` (default 8000) is the web's port; honcho gets it as its base port."""
    if WEB not in processes:
        raise PlanError("make run needs the `web` process (PROCESSES must include web)")
    port = _port(environ.get("PORT", ""), "PORT", DEFAULT_PORT)
    names = [WEB, *(p for p in dict.fromkeys(processes) if p not in (WEB, LLM))]
    env = {**environ, "PORT": str(port), "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    local_model_port = None
    if local_model and local_model_installed and not environ.get("SOMA_LLM_BASE_URL", "").strip():
        local_model_port = _port(environ.get("SOMA_LOCAL_LLM_PORT", ""), "SOMA_LOCAL_LLM_PORT", LLM_PORT)
        names.append(LLM)
        if local_model_port == port:
            raise PlanError(f"PORT and SOMA_LOCAL_LLM_PORT are both {port}: give them different ports")
    else:
        env["SOMA_LOCAL_LLM"] = "0"  # the settings must not point at a model nobody serves
    return RunPlan(
        port=port,
        processes=tuple(names),
        local_model_port=local_model_port,
        embedded_redis=not environ.get("REDIS_URL", "").strip(),
        env=env,
    )
