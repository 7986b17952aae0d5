"""/metrics over real processes: HTTP, task and turn metrics from the workers, scrape-time gauges."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from somaagent.models import DeadLetter, OutboxMessage
from tests.live import LiveSystem, free_port, read_stream, wait_until
from tests.somaagent.support import scrape, value

pytestmark = pytest.mark.integration


def _send(system: LiveSystem, key: str, message: str, **headers: str) -> httpx.Response:
    with system.client(key) as c:
        return c.post("/v1/session/message", json={"message": message}, headers=headers)


def test_task_metrics_of_the_workers_show_on_the_web_and_on_the_worker_port(live_db, llm_stub, tenant_key):
    system = LiveSystem(
        env={
            # queues of its own: no other test's worker takes these messages
            "SOMA_REDIS_PREFIX": f"m{uuid.uuid4().hex[:8]}:",
            "SOMA_METRICS_SCRAPE_CACHE_SECONDS": "0",
            "SOMA_LLM_BASE_URL": f"{llm_stub.url}/v1",
            "SOMA_LLM_MODEL": "stub-model",
        }
    )
    metrics_url = f"{system.url}/metrics"
    try:
        system.start_web()
        # Alone in sweeping the shared test database: another system's turn sweep would
        # re-dispatch these waiting turns to its own workers (and count them there).
        with system.solo():
            accepted = [_send(system, tenant_key.key, f"m{i} [[tokens=5]]").json() for i in range(3)]
            samples = wait_until(
                lambda: (
                    (s := scrape(metrics_url))
                    and value(s, "soma_queue_depth", queue="conversation") == 3
                    and s
                ),
                timeout=20,
                what="three messages waiting in the conversation queue",
            )
            assert value(samples, "soma_queue_depth", queue="tools") == 0
            assert value(samples, "soma_scrape_source_up", source="queues") == 1
            assert (
                value(
                    samples,
                    "soma_http_request_duration_seconds_count",
                    route="v1/session/message",
                    method="POST",
                    status="202",
                )
                == 3
            )
            _check_active_sse_streams(system, tenant_key.key, accepted[0]["session_id"], metrics_url)
            port = free_port()
            system.start_worker(queues="conversation", env={"SOMA_METRICS_PORT": str(port)})
            for a in accepted:
                read_stream(system, tenant_key.key, a["session_id"])
            samples = wait_until(
                lambda: (
                    (s := scrape(metrics_url))
                    and (value(s, "soma_task_runs_total", task="conversation.run_turn") or 0) >= 3
                    and s
                ),
                timeout=20,
                what="the worker's task runs on the web's /metrics",
            )
            assert value(samples, "soma_queue_depth", queue="conversation") == 0
            assert (
                value(
                    samples, "soma_task_duration_seconds_count", task="conversation.run_turn", state="SUCCESS"
                )
                or 0
            ) >= 3
            assert (value(samples, "soma_turns_finished_total", outcome="final") or 0) >= 3
            assert (
                value(samples, "soma_llm_time_to_first_token_seconds_count", model="stub-model") or 0
            ) >= 3
            assert (value(samples, "soma_llm_tokens_per_second_count", model="stub-model") or 0) >= 3
            assert (value(samples, "soma_llm_completion_tokens_total", model="stub-model") or 0) >= 15
            assert (value(samples, "soma_llm_streams_total", model="stub-model", outcome="ok") or 0) >= 3
            assert value(samples, "soma_scrape_source_up", source="memory") == 1
            assert value(samples, "soma_memory_write_backlog") is not None
            assert value(samples, "soma_memory_replication_lag_seconds") is not None
            worker_samples = scrape(f"http://127.0.0.1:{port}/metrics")
            assert (value(worker_samples, "soma_task_runs_total", task="conversation.run_turn") or 0) >= 3
            # the worker's port serves process metrics only, not the database gauges
            assert value(worker_samples, "soma_queue_depth") is None
    finally:
        system.stop()


def _check_active_sse_streams(system: LiveSystem, key: str, session_id: str, metrics_url: str) -> None:
    """One open SSE client counts as one active stream, and no longer once it leaves."""
    with httpx.stream(
        "GET",
        f"{system.url}/v1/sessions/{session_id}/stream",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        lines = response.iter_lines()  # held: a dropped iterator closes the connection
        next(lines)
        wait_until(
            lambda: value(scrape(metrics_url), "soma_active_streams", transport="sse") == 1,
            timeout=20,
            what="one active SSE stream",
        )
    wait_until(
        lambda: value(scrape(metrics_url), "soma_active_streams", transport="sse") == 0,
        timeout=20,
        what="no active SSE stream once the client left",
    )
    assert (value(scrape(metrics_url), "soma_streams_opened_total", transport="sse") or 0) >= 1


def test_outbox_and_dlq_gauges_and_readyz_when_the_broker_is_down(live_db, tenant_key):
    topic = f"ops.test.{uuid.uuid4().hex[:8]}"
    old = timezone.now() - timedelta(seconds=300)
    row = OutboxMessage.objects.create(
        topic=topic,
        payload={},
        dedupe_key=f"{topic}:1",
        created_at=old,
        next_attempt_at=timezone.now() + timedelta(days=1),  # no sweep picks it up
    )
    letter = DeadLetter.objects.create(topic=topic, event={}, error="boom", attempts=3)
    system = LiveSystem(
        env={
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
            "SOMA_METRICS_SCRAPE_CACHE_SECONDS": "0",
        }
    )
    try:
        system.start_web()
        ready = httpx.get(f"{system.url}/readyz", timeout=20)
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert checks["broker"]["ok"] is False and checks["broker"]["required"] is True
        assert checks["database"]["ok"] is True and checks["redis"]["ok"] is True
        samples = scrape(f"{system.url}/metrics")
        assert value(samples, "soma_outbox_backlog", topic=topic) == 1
        assert (value(samples, "soma_outbox_oldest_unpublished_age_seconds") or 0) >= 299
        assert value(samples, "soma_dlq_size", topic=topic) == 1
        assert value(samples, "soma_scrape_source_up", source="queues") == 0
        assert value(samples, "soma_scrape_source_up", source="outbox") == 1
    finally:
        system.stop()
        row.delete()
        letter.delete()


def test_metrics_token_protects_the_endpoint(live_db):
    system = LiveSystem(env={"SOMA_METRICS_TOKEN": "s3cret-token"})
    try:
        system.start_web()
        denied = httpx.get(f"{system.url}/metrics", timeout=10)
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "not_authenticated"
        wrong = httpx.get(f"{system.url}/metrics", headers={"Authorization": "Bearer nope"}, timeout=10)
        assert wrong.status_code == 401
        samples = scrape(f"{system.url}/metrics", headers={"Authorization": "Bearer s3cret-token"})
        assert value(samples, "soma_scrape_source_up", source="outbox") == 1
    finally:
        system.stop()
