"""Two web processes and two workers on one database and one broker behave like one system.

A client streams from web A while its messages go in through web B and the
replies come from workers started beside web B, each with its own metrics
directory and port (as if on its own host). Run on Redis and on RabbitMQ (a
vhost of its own) as the broker.
"""

from __future__ import annotations

import threading
import uuid
from contextlib import nullcontext
from typing import Any

import pytest

from conversations.models import SessionEvent, Turn
from tests.brokers import rabbit_vhost
from tests.live import LiveSystem, free_port, read_stream, wait_until
from tests.run_logs import run_tmpdir
from tests.somaagent.support import scrape, value

pytestmark = pytest.mark.integration
MESSAGES = 6


def _follow_all(system: LiveSystem, key: str, session_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    results: dict[str, list[dict[str, Any]]] = {}
    errors: list[BaseException] = []

    def follow(sid: str) -> None:
        try:
            results[sid] = read_stream(system, key, sid, timeout=90)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=follow, args=(sid,)) for sid in session_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return results


def _check_reply(events: list[dict[str, Any]]) -> None:
    cursors = [int(e["id"]) for e in events]
    assert cursors == list(range(cursors[0], cursors[0] + len(cursors))), "gap or duplicate cursor"
    finals = [e for e in events if e["type"] == "assistant.final"]
    assert len(finals) == 1 and events[-1] is finals[0]
    text = "".join(e["data"]["text"] for e in events if e["type"] == "assistant.delta")
    assert text == finals[0]["data"]["message"] == "".join(f"t{i} " for i in range(8))


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_two_webs_and_two_workers_behave_like_one(broker, live_db, llm_stub, tenant_key):
    env = {
        "SOMA_REDIS_PREFIX": f"s{uuid.uuid4().hex[:8]}:",
        "SOMA_LLM_BASE_URL": f"{llm_stub.url}/v1",
        "SOMA_LLM_MODEL": "stub-model",
        "SOMA_METRICS_SCRAPE_CACHE_SECONDS": "0",
    }
    with rabbit_vhost() if broker == "rabbitmq" else nullcontext(None) as broker_url:
        if broker_url:
            env["CELERY_BROKER_URL"] = broker_url
        web_a = LiveSystem(env=env)
        web_b = LiveSystem(env=env, worker_concurrency=1)
        ports = [free_port(), free_port()]
        try:
            web_a.start_web()
            web_b.start_web()
            for port in ports:
                web_b.start_worker(
                    queues="conversation",
                    env={"SOMA_METRICS_PORT": str(port), "PROMETHEUS_MULTIPROC_DIR": _fresh_dir()},
                )
            key = tenant_key.key
            session_ids = []
            with web_b.client(key) as c:
                for i in range(MESSAGES):
                    r = c.post("/v1/session/message", json={"message": f"n{i} [[tokens=8]] [[delay=0.05]]"})
                    assert r.status_code == 202, r.text
                    session_ids.append(r.json()["session_id"])
            for events in _follow_all(web_a, key, session_ids).values():
                _check_reply(events)
            # a follow-up goes in through web A and is read through web B
            with web_a.client(key) as c:
                r = c.post(
                    "/v1/session/message",
                    json={"message": "again [[tokens=8]]", "session_id": session_ids[0]},
                )
            assert r.status_code == 202
            after = int(r.json()["stream"]["sse"].rsplit("=", 1)[1])
            _check_reply(read_stream(web_b, key, session_ids[0], after=after)[1:])

            runs = [
                value(
                    scrape(f"http://127.0.0.1:{p}/metrics"),
                    "soma_task_runs_total",
                    task="conversation.run_turn",
                )
                or 0
                for p in ports
            ]
            assert sum(runs) == MESSAGES + 1, f"each turn ran exactly once: {runs}"
            assert all(n >= 1 for n in runs), f"both workers took turns: {runs}"
            turns = Turn.objects.filter(session_id__in=session_ids)
            assert turns.count() == MESSAGES + 1
            assert set(turns.values_list("status", flat=True)) == {"completed"}
            finals = SessionEvent.objects.filter(session_id__in=session_ids, type="assistant.final")
            assert finals.count() == MESSAGES + 1
            samples = wait_until(
                lambda: (
                    (s := scrape(f"{web_a.url}/metrics"))
                    and value(s, "soma_queue_depth", queue="conversation") == 0
                    and s
                ),
                timeout=20,
                what="the conversation queue to be empty",
            )
            assert value(samples, "soma_scrape_source_up", source="queues") == 1
        finally:
            web_a.stop()
            web_b.stop()


def _fresh_dir() -> str:
    return run_tmpdir("soma-metrics-worker-")
