"""Flower against a live system: behind basic auth, it shows the worker, its queues and the tasks."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import httpx
import pytest
import yaml

from somaagent.project.flower_auth import flower_auth_problems, is_flower_command
from tests.live import ROOT, VENV_BIN, LiveSystem, Proc, free_port, read_stream, wait_until

AUTH = ("ops", "flower-pw-123")


@pytest.fixture
def flower(live_system: LiveSystem) -> Iterator[str]:
    port = free_port()
    proc = Proc(
        "flower",
        [
            str(VENV_BIN / "celery"),
            "-A",
            "somaagent",
            "flower",
            "--address=127.0.0.1",
            f"--port={port}",
        ],
        {**live_system.env, "FLOWER_BASIC_AUTH": ":".join(AUTH)},
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if not proc.alive():
            raise AssertionError(f"flower exited:\n{proc.log_tail()}")
        try:
            return httpx.get(f"{url}/healthcheck", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, timeout=60, interval=0.3, what="flower")
        yield url
    finally:
        proc.kill()


@pytest.mark.integration
def test_flower_shows_workers_queues_and_tasks(live_system, flower, tenant_key):
    assert httpx.get(f"{flower}/api/workers", timeout=10).status_code == 401
    assert httpx.get(f"{flower}/api/workers", auth=("ops", "wrong"), timeout=10).status_code == 401

    def workers() -> dict:
        r = httpx.get(f"{flower}/api/workers", params={"refresh": 1}, auth=AUTH, timeout=20)
        assert r.status_code == 200, r.text
        return r.json()

    def our_queues() -> set[str]:
        seen = workers()
        ours = [n for n in seen if n.startswith("w") and f"-{os.getpid()}@" in n]
        return {q["name"] for n in ours for q in seen[n].get("active_queues") or []}

    wait_until(
        lambda: {"conversation", "tools", "memory", "default"} <= our_queues(),
        timeout=60,
        interval=1,
        what="flower to list our workers and their queues",
    )

    def turn_task() -> list:
        r = httpx.get(
            f"{flower}/api/tasks", params={"taskname": "conversation.run_turn"}, auth=AUTH, timeout=10
        )
        assert r.status_code == 200, r.text
        return [t for t in r.json().values() if t.get("state") == "SUCCESS"]

    def a_turn_then_its_task() -> list:
        # Flower learns of tasks from the workers' events, once its event receiver has
        # connected (some time after it answers HTTP): a turn that ran before is never seen.
        with live_system.client(tenant_key.key) as c:
            accepted = c.post("/v1/session/message", json={"message": "flower [[tokens=2]]"}).json()
        read_stream(live_system, tenant_key.key, accepted["session_id"])
        try:
            return wait_until(turn_task, timeout=5, interval=0.5, what="the turn task")
        except AssertionError:
            return []

    tasks = wait_until(a_turn_then_its_task, timeout=60, interval=0, what="flower to show the turn task")
    assert tasks[0]["name"] == "conversation.run_turn"
    lengths = httpx.get(f"{flower}/api/queues/length", auth=AUTH, timeout=20)
    assert lengths.status_code == 200
    assert "conversation" in {q["name"] for q in lengths.json()["active_queues"]}


# --- outside DEV Flower starts only behind a real password (issue 14, item 10) ------------------


@pytest.mark.parametrize(
    "basic_auth", [None, "", "ops:", ":pw-long-enough-123", "admin:CHANGE-ME", "ops:short"]
)
def test_flower_refuses_to_start_outside_dev_without_a_real_password(basic_auth) -> None:
    env = {k: v for k, v in os.environ.items() if k != "FLOWER_BASIC_AUTH"}
    env.update(
        {"SOMA_DEPLOYMENT_MODE": "STAGING", "REDIS_URL": env.get("REDIS_URL") or "redis://127.0.0.1:1/0"}
    )
    if basic_auth is not None:
        env["FLOWER_BASIC_AUTH"] = basic_auth  # compose passes an unset variable as ""
    argv = [
        str(VENV_BIN / "celery"),
        "-A",
        "somaagent",
        "flower",
        "--address=127.0.0.1",
        f"--port={free_port()}",
    ]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "Flower refuses to start in STAGING mode" in done.stderr and "FLOWER_BASIC_AUTH" in done.stderr


def test_a_real_password_passes_and_dev_needs_none() -> None:
    assert flower_auth_problems(mode="PROD", basic_auth="ops:Zq8-v7Lr2xT9mK4w") == []
    assert flower_auth_problems(mode="DEV", basic_auth=None) == []
    assert is_flower_command(["/srv/.venv/bin/celery", "-A", "somaagent", "flower"])
    assert is_flower_command(
        ["/usr/lib/python3/site-packages/celery/__main__.py", "-A", "somaagent", "flower"]
    )
    assert not is_flower_command(["/srv/.venv/bin/pytest", "-k", "flower"])
    assert not is_flower_command(["/srv/.venv/bin/celery", "-A", "somaagent", "worker"])


def test_the_deployment_examples_ship_no_flower_password() -> None:
    secret = yaml.safe_load((ROOT / "deploy" / "k8s" / "secret.example.yaml").read_text())
    assert flower_auth_problems(mode="PROD", basic_auth=secret["stringData"].get("FLOWER_BASIC_AUTH"))
    flower = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["flower"]
    assert flower["ports"] == ["127.0.0.1:5555:5555"]  # not on every interface of the host
