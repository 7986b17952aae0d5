"""The sandbox escape suite: each attempt must be contained, at every isolation level present.

Runs real sandboxed processes (bubblewrap, or the rlimits-only level through
``unshare``). Filesystem confinement exists only at the bubblewrap level, so
those attempts run there alone; docs/tools.md says so.
"""

from __future__ import annotations

import os
import socket
import textwrap
import threading
import uuid
from pathlib import Path

import pytest

from tests.live import wait_until
from tools.registry import ToolContext, ToolError
from tools.sandbox import BWRAP, OFF, RLIMITS, SandboxLimits, SandboxUnavailable, choose, probe
from tools.sandbox.adapters import BwrapSandbox, DisabledSandbox, RlimitsSandbox

ROOT = Path(__file__).resolve().parents[2]
PYTHON = "/usr/bin/python3"
UIDS = range(1_000_000, 1_001_000)
LIMITS = SandboxLimits(
    cpu_seconds=5,
    wall_seconds=15,
    memory_bytes=256 * 1024 * 1024,
    max_processes=32,
    max_open_files=64,
    max_output_bytes=16 * 1024,
    tmpfs_bytes=16 * 1024 * 1024,
)


def _level(name: str):
    box = (
        BwrapSandbox(python=PYTHON, uids=UIDS) if name == BWRAP else RlimitsSandbox(python=PYTHON, uids=UIDS)
    )
    why = probe(box, isolation=name == BWRAP)
    if why is not None:
        message = f"isolation level {name} is not available on this machine: {why}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI installs bubblewrap: see .ci/run)")
        pytest.skip(message)
    return box


@pytest.fixture(params=[BWRAP, RLIMITS])
def box(request):
    return _level(request.param)


@pytest.fixture
def bwrap_box():
    return _level(BWRAP)


def run(box, code: str, **limits):
    merged = SandboxLimits(**{**LIMITS.__dict__, **limits})
    return box.run_python(code=textwrap.dedent(code), limits=merged)


def host_processes_with(marker: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmdline:
                found.append(f"{entry.name}: {cmdline}")
    return found


def test_runs_code_and_reports_its_level(box):
    result = run(box, "import sys; print('hi'); print('oops', file=sys.stderr); raise SystemExit(3)")
    assert result.stdout == "hi\n" and result.stderr == "oops\n"
    assert result.exit_status == 3 and result.timed_out is False
    assert result.isolation == box.level


def test_no_network_not_even_the_hosts_loopback(box):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    accepted: list[object] = []

    def accept() -> None:
        try:
            accepted.append(listener.accept())
        except OSError:
            pass

    thread = threading.Thread(target=accept)
    thread.start()
    result = run(
        box,
        f"""
        import socket
        for target in [("127.0.0.1", {port}), ("192.0.2.1", 80), ("1.1.1.1", 53)]:
            try:
                socket.create_connection(target, timeout=2)
                print("connected", target)
            except OSError as e:
                print("refused", target, e.errno)
        try:
            socket.getaddrinfo("example.com", 80)
            print("resolved")
        except OSError as e:
            print("no-dns")
        """,
    )
    thread.join()
    listener.close()
    assert "connected" not in result.stdout and "resolved" not in result.stdout, result.stdout
    assert result.stdout.count("refused") == 3 and "no-dns" in result.stdout
    assert accepted == []


def test_cannot_write_outside_its_work_dir(bwrap_box):
    marker = f"soma-escape-{uuid.uuid4().hex}"
    targets = ["/" + marker, f"/usr/{marker}", f"/dev/{marker}", str(ROOT / marker), f"/etc/{marker}"]
    result = run(
        bwrap_box,
        f"""
        import os
        for path in {targets!r}:
            try:
                with open(path, "w") as f:
                    f.write("x")
                print("WROTE", path)
            except OSError as e:
                print("denied", path)
        open("inside.txt", "w").write("fine")
        open("/tmp/{marker}", "w").write("private tmp")
        print("cwd", os.getcwd(), sorted(os.listdir(".")))
        """,
    )
    assert "WROTE" not in result.stdout, result.stdout
    assert result.stdout.count("denied") == len(targets)
    assert "cwd /work ['inside.txt', 'main.py']" in result.stdout
    for path in [*targets, f"/tmp/{marker}"]:
        assert not Path(path).exists(), path


def test_cannot_read_the_apps_files_or_secrets(bwrap_box):
    secret_files = [ROOT / "somaagent" / "settings.py", ROOT / "var" / "secret_key", ROOT / "manage.py"]
    result = run(
        bwrap_box,
        f"""
        import os
        for path in {[str(p) for p in secret_files]!r} + ["/etc/passwd", "/root/.bashrc", "/proc/1/environ"]:
            try:
                print("READ", path, open(path, "rb").read(40))
            except OSError:
                print("unreadable", path)
        print("APPDIR", os.path.exists({str(ROOT)!r}), os.path.exists({str(ROOT / "somaagent")!r}))
        """,
    )
    assert "READ /work" not in result.stdout and f"READ {ROOT}" not in result.stdout, result.stdout
    assert "READ /etc/passwd" not in result.stdout and "READ /root" not in result.stdout
    assert "APPDIR False False" in result.stdout


def test_environment_secrets_do_not_reach_the_code(box, monkeypatch):
    monkeypatch.setenv("SOMA_TEST_SECRET", "hunter2-do-not-leak")
    result = run(box, "import os; print(sorted(os.environ.items()))")
    assert "hunter2" not in result.stdout
    assert "DATABASE_URL" not in result.stdout and "SOMA_" not in result.stdout
    assert "DJANGO" not in result.stdout


def test_secret_files_of_the_worker_user_are_unreadable(box, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the sandbox drops to another uid only when the worker runs as root")
    secret = tmp_path / "secret"
    secret.write_text("top secret")
    secret.chmod(0o600)
    tmp_path.chmod(0o755)
    result = run(box, f"print(open({str(secret)!r}).read())")
    assert "top secret" not in result.stdout and result.exit_status != 0


def test_fork_bomb_is_contained(box):
    seconds = 600000 + uuid.uuid4().int % 99999
    result = run(
        box,
        f"""
        import os
        failures = 0
        children = 0
        while children + failures < 2000:
            try:
                if os.fork() == 0:
                    os.execvp("sleep", ["sleep", "{seconds}"])
                children += 1
            except OSError:
                failures += 1
        print("children", children, "failures", failures)
        """,
        wall_seconds=10,
    )
    children = int(result.stdout.split()[1]) if result.stdout.startswith("children") else 0
    assert children < LIMITS.max_processes, result.stdout
    assert "failures" in result.stdout and int(result.stdout.split()[3]) > 0
    wait_until(
        lambda: not host_processes_with(f"sleep {seconds}"), timeout=15, what="the forked processes to go"
    )


def test_allocating_10_gb_fails_inside(box):
    result = run(box, "x = bytearray(10 * 1024**3)\nprint('allocated')")
    assert "allocated" not in result.stdout
    assert "MemoryError" in result.stderr and result.exit_status == 1


def test_infinite_loop_stops_at_the_cpu_limit(box):
    result = run(box, "while True:\n    pass", cpu_seconds=1, wall_seconds=60)
    assert result.timed_out is False
    assert result.signal in ("SIGXCPU", "SIGKILL"), result


def test_printing_1_gb_is_truncated_and_does_not_block(box):
    result = run(
        box,
        """
        import sys
        chunk = "x" * (1 << 20)
        for _ in range(1024):
            sys.stdout.write(chunk)
        sys.stdout.flush()
        print("done", file=sys.stderr)
        """,
        wall_seconds=60,
    )
    assert len(result.stdout) == LIMITS.max_output_bytes
    assert result.stdout_truncated is True
    assert result.timed_out or (result.stdout_bytes >= 1024 * (1 << 20) and result.stderr == "done\n")


def test_sleeping_past_the_wall_time_is_killed(box):
    result = run(box, "import time\nprint('start', flush=True)\ntime.sleep(600)", wall_seconds=2)
    assert result.timed_out is True and result.exit_status is None
    assert result.stdout == "start\n"


@pytest.mark.parametrize("ending", ["returns", "is_killed"])
def test_a_spawned_process_does_not_outlive_the_call(box, ending):
    seconds = 900000 + uuid.uuid4().int % 99999
    tail = "" if ending == "returns" else "import time\ntime.sleep(600)\n"
    result = run(
        box,
        textwrap.dedent(
            f"""
        import os, subprocess
        subprocess.Popen(["sleep", "{seconds}"], start_new_session=True)
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execvp("sleep", ["sleep", "{seconds + 1}"])
            os._exit(0)
        print("spawned", flush=True)
        """
        )
        + tail,
        wall_seconds=3,
    )
    assert result.stdout.startswith("spawned")
    assert result.timed_out is (ending == "is_killed")
    wait_until(
        lambda: not host_processes_with(f"sleep {seconds}"), timeout=15, what="spawned processes to be gone"
    )
    assert host_processes_with(f"sleep {seconds}") == []


def test_off_refuses_to_run_code() -> None:
    chosen = choose(mode=OFF, python=PYTHON, uids=UIDS)
    assert chosen.level == OFF
    with pytest.raises(SandboxUnavailable):
        chosen.run_python(code="print(1)", limits=LIMITS)


def test_no_working_level_means_refusal_not_a_silent_fallback(tmp_path) -> None:
    marker = tmp_path / "ran"
    chosen = choose(mode="auto", python="/nonexistent/python3", uids=UIDS)
    assert isinstance(chosen, DisabledSandbox)
    assert "bwrap" in chosen.detail and "apt-get install bubblewrap" in chosen.detail
    with pytest.raises(SandboxUnavailable):
        chosen.run_python(code=f"open({str(marker)!r}, 'w')", limits=LIMITS)
    assert not marker.exists()


def test_unknown_mode_is_refused() -> None:
    assert choose(mode="yolo", python=PYTHON, uids=UIDS).level == OFF


def test_python_tool_refuses_when_the_sandbox_is_off(monkeypatch) -> None:
    from tools.builtin import python as python_tool

    monkeypatch.setattr(python_tool, "sandbox", lambda: DisabledSandbox("test"))
    ctx = ToolContext(tenant_id="t", persona_id=None, session_id="s", request_id="r", timeout=5, config={})
    with pytest.raises(ToolError) as info:
        python_tool.run_python({"code": "print(1)"}, ctx)
    assert info.value.code == "sandbox_unavailable"


def test_the_launch_chain_is_helper_processes_not_preexec_fn(bwrap_box) -> None:
    argv = bwrap_box.argv(limits=LIMITS, code_fd=3)
    assert argv[2:4] == ["-S", str(ROOT / "tools" / "sandbox" / "reaper.py")]
    helpers = [Path(a).name for a in argv if a.startswith("/usr/") or a.startswith("/bin/")]
    assert helpers[:3] == ["setpriv", "prlimit", "bwrap"]
    assert "--unshare-all" in argv and "--die-with-parent" in argv and "--clearenv" in argv


def test_back_to_back_runs_leave_no_zombies_behind(bwrap_box) -> None:
    # bubblewrap orphans its PID-1 process; without the reaper these zombies pile up under the
    # sandbox uid until its process limit refuses new sandboxes.
    for _ in range(LIMITS.max_processes + 5):
        assert run(bwrap_box, "print('ok')").stdout == "ok\n"


def test_a_weaker_choice_is_reconsidered_and_the_strongest_is_kept(monkeypatch, bwrap_box) -> None:
    import tools.sandbox as chooser
    from tests.tools.conftest import tool_settings

    monkeypatch.setattr(chooser, "RETRY_WEAKER_AFTER_SECONDS", 0.0)
    chooser.sandbox_reset()
    try:
        with tool_settings(sandbox_mode="auto", sandbox_python="/nonexistent/python3"):
            assert chooser.sandbox().level == OFF  # e.g. a transient failure at start-up
        with tool_settings(sandbox_mode="auto", sandbox_python=PYTHON):
            assert chooser.sandbox().level == BWRAP  # chosen again, not stuck at off
        with tool_settings(sandbox_mode="auto", sandbox_python="/nonexistent/python3"):
            assert chooser.sandbox().level == BWRAP  # the strongest level is kept
    finally:
        chooser.sandbox_reset()


@pytest.fixture
def without_bubblewrap(monkeypatch):
    """This machine as if the Debian package bubblewrap were not installed."""
    from tools.sandbox import adapters

    real = adapters._tool

    def tool(name: str) -> str:
        if name == "bwrap":
            raise SandboxUnavailable(f"the helper binary {name!r} is not installed")
        return real(name)

    monkeypatch.setattr(adapters, "_tool", tool)


def test_auto_without_bubblewrap_refuses_code_instead_of_the_weaker_level(without_bubblewrap) -> None:
    chosen = choose(mode="auto", python=PYTHON, uids=UIDS)
    assert chosen.level == OFF, chosen.detail
    assert "apt-get install bubblewrap" in chosen.detail and "'bwrap' is not installed" in chosen.detail
    with pytest.raises(SandboxUnavailable):
        chosen.run_python(code="print(1)", limits=LIMITS)


def test_the_weaker_level_only_when_the_operator_names_it(without_bubblewrap) -> None:
    _level(RLIMITS)  # skips where unshare cannot take the network away
    assert choose(mode=RLIMITS, python=PYTHON, uids=UIDS).level == RLIMITS
    assert choose(mode=BWRAP, python=PYTHON, uids=UIDS).level == OFF


def test_the_probe_proves_a_private_filesystem_not_just_no_network() -> None:
    weaker = _level(RLIMITS)  # passes the network-only probe
    why = probe(weaker, isolation=True)
    assert why is not None and f"visible:{ROOT}" in why, why


def test_bubblewrap_passes_the_isolation_probe(bwrap_box) -> None:
    assert probe(bwrap_box, isolation=True) is None


@pytest.mark.django_db
def test_without_isolation_the_python_tool_is_not_offered_and_says_why(without_bubblewrap) -> None:
    import tools.sandbox as chooser
    from somaagent.models import Tenant
    from tests.tools.conftest import tool_settings
    from tools.health import tools_check
    from tools.selectors import offered_specs, tools_for

    tenant = Tenant.objects.create(name="acme")
    chooser.sandbox_reset()
    try:
        with tool_settings(sandbox_mode="auto"):
            effective = tools_for(tenant_id=tenant.pk, persona_id=None)
            offered = [spec["function"]["name"] for spec in offered_specs(effective)]
            readyz_tools = tools_check()
    finally:
        chooser.sandbox_reset()
    assert "python" not in offered and "current_time" in offered
    assert "apt-get install bubblewrap" in (effective["python"].unavailable or "")
    assert "apt-get install bubblewrap" in readyz_tools["unavailable"]["python"]
