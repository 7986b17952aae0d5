"""make run's launcher: the web's port is the one it prints, taken ports are refused with advice,
and the development credentials it prints are created once and still work."""

from __future__ import annotations

import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command

from somaagent.dev_credentials import dev_credentials_path, dev_credentials_read
from somaagent.identity.apikeys import api_key_authenticate, api_key_revoke
from somaagent.management.commands import bootstrap_dev
from somaagent.project.devrun.__main__ import Launcher, ports_taken
from somaagent.project.devrun.banner import banner_text
from somaagent.project.devrun.plan import PlanError, run_plan
from tests.live import wait_until

PROCS = ["web", "worker", "tools", "beat"]


def plan(env: dict[str, str], *, processes=PROCS, local_model=False, installed=False):
    return run_plan(
        env,
        processes=processes,
        local_model=local_model,
        local_model_installed=installed,
        metrics_dir=Path("/tmp/metrics"),
    )


def test_the_web_port_is_8000_unless_port_is_set_and_honcho_is_told() -> None:
    default = plan({})
    assert default.port == 8000 and default.url == "http://127.0.0.1:8000"
    assert default.env["PORT"] == "8000"
    argv = default.honcho_argv(Path("/venv/bin"), Path("Procfile"))
    # honcho's own base port is 5000: it must be given the web's, and the web must come first.
    assert argv[argv.index("-p") + 1] == "8000" and argv[argv.index("-p") + 2] == "web"
    chosen = plan({"PORT": "9123"}, processes=["worker", "beat", "web"])
    assert chosen.port == 9123 and chosen.processes[0] == "web" and chosen.env["PORT"] == "9123"
    for bad in ("http", "0", "70000"):
        with pytest.raises(PlanError, match="PORT must be a TCP port"):
            plan({"PORT": bad})
    with pytest.raises(PlanError, match="web"):
        plan({}, processes=["worker"])


def test_the_local_model_runs_only_when_wanted_installed_and_no_endpoint_is_set() -> None:
    served = plan({}, local_model=True, installed=True)
    assert served.processes[-1] == "llm" and served.local_model_port == 8008
    assert "SOMA_LOCAL_LLM" not in served.env
    for env, wanted, installed in (
        ({}, False, True),
        ({}, True, False),
        ({"SOMA_LLM_BASE_URL": "http://x/v1"}, True, True),
    ):
        other = plan(env, local_model=wanted, installed=installed)
        assert "llm" not in other.processes and other.local_model_port is None
        assert other.env["SOMA_LOCAL_LLM"] == "0", "the settings must not point at a model nobody serves"
    assert plan({"SOMA_LOCAL_LLM_PORT": "8123"}, local_model=True, installed=True).local_model_port == 8123
    with pytest.raises(PlanError, match="different ports"):
        plan({"PORT": "8123", "SOMA_LOCAL_LLM_PORT": "8123"}, local_model=True, installed=True)


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_taken_web_port_is_refused_with_the_variable_that_moves_it(taken_port: int) -> None:
    message = ports_taken(plan({"PORT": str(taken_port)}))
    assert (
        message is not None
        and f"Port {taken_port}" in message
        and f"PORT={taken_port + 1} make run" in message
    )
    assert ports_taken(plan({"PORT": str(_free_port())})) is None


def test_a_taken_model_port_names_soma_local_llm_port(taken_port: int) -> None:
    run = plan(
        {"PORT": str(_free_port()), "SOMA_LOCAL_LLM_PORT": str(taken_port)}, local_model=True, installed=True
    )
    message = ports_taken(run)
    assert message is not None and f"Port {taken_port}" in message
    assert "SOMA_LOCAL_LLM_PORT=" in message and "LOCAL_MODEL=0" in message


@pytest.fixture
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(bootstrap_dev, "VAR_DIR", tmp_path)
    return tmp_path


@pytest.mark.django_db
def test_bootstrap_dev_creates_working_credentials_once_and_replaces_a_dead_key(var_dir: Path) -> None:
    call_command("bootstrap_dev")
    path = dev_credentials_path(var_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = dev_credentials_read(path)
    assert first is not None and first.user == "admin" and first.tenant == "dev"
    key = api_key_authenticate(first.api_key)
    assert key is not None and key.tenant.name == "dev"
    from django.contrib.auth import authenticate

    assert authenticate(username="admin", password=first.password) is not None
    call_command("bootstrap_dev")
    assert dev_credentials_read(path) == first, "kept while the key works"
    api_key_revoke(prefix=key.prefix)
    call_command("bootstrap_dev")
    second = dev_credentials_read(path)
    assert second is not None and second.api_key != first.api_key
    assert api_key_authenticate(second.api_key) is not None
    assert second.password == first.password, "the user's password still matches, so it is kept"


def test_the_banner_prints_the_url_login_key_and_a_curl_that_reaches_that_url(tmp_path: Path) -> None:
    from somaagent.dev_credentials import DevCredentials

    run = plan({"PORT": "8123"})
    creds = DevCredentials(user="admin", password="pw", tenant="dev", api_key="soma_abc_def")
    text = banner_text(
        plan=run,
        credentials=creds,
        credentials_file=tmp_path / "dev-credentials.txt",
        readyz={"checks": {"llm": {"ok": False, "configured": False}}},
    )
    assert "SomaAgent is ready at http://127.0.0.1:8123/" in text
    assert "user admin   password pw" in text and "soma_abc_def" in text
    assert "curl -sS -X POST http://127.0.0.1:8123/v1/session/message" in text
    assert str(tmp_path / "dev-credentials.txt") in text and "no_model_configured" in text


COUNTS_SIGTERM = """
import signal, sys, time
path = sys.argv[1]
def seen(signum, frame):
    with open(path, "a") as f:
        f.write("TERM\\n")
signal.signal(signal.SIGTERM, seen)
open(path, "a").close()
time.sleep(30)
"""


def test_honcho_is_told_to_stop_once_however_many_signals_arrive(tmp_path: Path) -> None:
    """A second signal landing while honcho prints a line crashed it and left its processes
    running: Ctrl-C reached it from the terminal while the launcher sent it SIGTERM too."""
    log = tmp_path / "signals"
    launcher = Launcher(plan({}))
    launcher.honcho = subprocess.Popen(
        [sys.executable, "-c", COUNTS_SIGTERM, str(log)], start_new_session=True
    )
    try:
        wait_until(log.exists, timeout=10, what="the stand-in for honcho to start")
        for signum in (signal.SIGINT, signal.SIGINT, signal.SIGTERM):  # Ctrl-C twice, then a stop
            launcher._on_signal(signum, None)
            time.sleep(0.3)  # pending signals of one kind merge: let each one land on its own
        wait_until(lambda: "TERM" in log.read_text(), timeout=10, what="the SIGTERM")
        assert log.read_text().count("TERM") == 1
    finally:
        launcher.honcho.kill()
        launcher.honcho.wait(timeout=10)
