"""Flower against a live system: behind basic auth, it shows the worker, its queues and the tasks."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from tests.live import VENV_BIN, LiveSystem, Proc, free_port, read_stream, wait_until

pytestmark = pytest.mark.integration
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


def test_flower_shows_workers_queues_and_tasks(live_system, flower, tenant_key):  # type: ignore[no-untyped-def]
    assert httpx.get(f"{flower}/api/workers", timeout=10).status_code == 401
    assert httpx.get(f"{flower}/api/workers", auth=("ops", "wrong"), timeout=10).status_code == 401

    def workers() -> dict:  # type: ignore[type-arg]
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

    def turn_task() -> list:  # type: ignore[type-arg]
        r = httpx.get(
            f"{flower}/api/tasks", params={"taskname": "conversation.run_turn"}, auth=AUTH, timeout=10
        )
        assert r.status_code == 200, r.text
        return [t for t in r.json().values() if t.get("state") == "SUCCESS"]

    def a_turn_then_its_task() -> list:  # type: ignore[type-arg]
        # Flower learns of tasks from the workers' events, once its event receiver has
        # connected (some time after it answers HTTP): a turn that ran before is never seen.
        with live_system.client(tenant_key.key) as c:
            accepted = c.post("/v1/session/message", json={"message": "flower [[tokens=2]]"}).json()
        read_stream(live_system, tenant_key.key, accepted["session_id"])
        try:
            return wait_until(turn_task, timeout=5, interval=0.5, what="the turn task")  # type: ignore[no-any-return]
        except AssertionError:
            return []

    tasks = wait_until(a_turn_then_its_task, timeout=60, interval=0, what="flower to show the turn task")
    assert tasks[0]["name"] == "conversation.run_turn"
    lengths = httpx.get(f"{flower}/api/queues/length", auth=AUTH, timeout=20)
    assert lengths.status_code == 200
    assert "conversation" in {q["name"] for q in lengths.json()["active_queues"]}
