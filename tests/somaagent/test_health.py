"""/readyz: adapters' checks, required or not, per-check timeouts, the answer cache."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator

import pytest
from django.test import Client

from somaagent import health
from tests.live import free_port

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh(settings) -> Iterator[None]:
    settings.SOMA_OPS = dataclasses.replace(settings.SOMA_OPS, readyz_cache_seconds=0)
    health._cache = None
    before = dict(health.CHECKS)
    yield
    health.CHECKS.clear()
    health.CHECKS.update(before)
    health._cache = None


def _ops(settings, **changes) -> None:
    settings.SOMA_OPS = dataclasses.replace(settings.SOMA_OPS, **changes)


def _model(settings, base_url: str) -> None:
    settings.SOMA = dataclasses.replace(settings.SOMA, llm_base_url=base_url, llm_model="stub-model")


def test_the_model_endpoint_is_checked(settings, llm_stub) -> None:
    _model(settings, f"{llm_stub.url}/v1")
    r = Client().get("/readyz")
    assert r.status_code == 200
    llm = r.json()["checks"]["llm"]
    assert llm["ok"] is True and llm["required"] is False and llm["configured"] is True
    assert llm["endpoints"] == [{"url": f"{llm_stub.url}/v1", "ok": True, "status": 200}]
    assert r.json()["checks"]["policy"]["ok"] is True


def test_a_dead_model_is_reported_and_fails_readiness_only_when_required(settings) -> None:
    _model(settings, f"http://127.0.0.1:{free_port()}/v1")
    r = Client().get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"
    assert r.json()["checks"]["llm"]["ok"] is False
    _ops(settings, readyz_required=frozenset({"database", "llm"}))
    r = Client().get("/readyz")
    assert r.status_code == 503 and r.json()["status"] == "not_ready"
    assert r.json()["checks"]["llm"]["required"] is True
    assert r.json()["checks"]["broker"]["required"] is False


def test_no_model_configured_is_not_a_failure(settings) -> None:
    _model(settings, "")
    llm = Client().get("/readyz").json()["checks"]["llm"]
    assert llm["ok"] is True and llm["configured"] is False


def test_a_hanging_check_times_out_and_a_required_one_makes_it_503(settings) -> None:
    release = threading.Event()
    _ops(settings, readyz_timeout_seconds=0.3)
    health.register_check("hangs", lambda: {"done": release.wait(30)}, required=True)
    try:
        r = Client().get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"]["hangs"] == {
            "ok": False,
            "required": True,
            "error": "no answer within 0.3s",
            "ms": r.json()["checks"]["hangs"]["ms"],
        }
        assert r.json()["checks"]["database"]["ok"] is True
    finally:
        release.set()


def test_the_answer_is_cached(settings) -> None:
    calls: list[int] = []

    def counted() -> dict[str, int]:
        calls.append(1)
        return {"n": len(calls)}

    health.register_check("counted", counted, required=False)
    _ops(settings, readyz_cache_seconds=3600)
    first = Client().get("/readyz").json()
    second = Client().get("/readyz").json()
    assert len(calls) == 1 and first == second
