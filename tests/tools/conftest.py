"""Fixtures for the tools package: the stub web (search + pages) and a live system with tools."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from tests.live import LiveSystem, Proc, StubServer

# Small limits so the tool tests finish in seconds; the worker processes read these.
TOOLS_ENV = {
    "SOMA_TOOL_MAX_CALLS_PER_TURN": "3",
    "SOMA_TOOL_TIMEOUT_SECONDS": "8",
    "SOMA_SANDBOX_WALL_SECONDS": "8",
    "SOMA_TOOL_QUEUE_GRACE_SECONDS": "10",
    "SOMA_TOOL_BREAKER_FAILURES": "2",
    "SOMA_TOOL_BREAKER_OPEN_SECONDS": "60",
}


@pytest.fixture(scope="session")
def web_stub() -> Iterator[StubServer]:
    server = StubServer("tests.stubs.web_server")
    yield server
    server.stop()


MAIN_QUEUES = "conversation,memory,default"
TOOL_QUEUES = "tools"


def worker_for(system: LiveSystem, queues: str) -> Proc | None:
    return next((w for w in system.workers if w.alive() and getattr(w, "queues", "") == queues), None)


def ensure_workers(system: LiveSystem) -> None:
    """One conversation worker and one tools worker, as in the Procfile: tool calls never wait
    for a worker slot that a waiting turn holds."""
    system.workers = [w for w in system.workers if w.alive()]
    for queues in (MAIN_QUEUES, TOOL_QUEUES):
        if worker_for(system, queues) is None:
            proc = system.start_worker(queues=queues)
            proc.queues = queues  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def tools_live(django_db_setup, django_db_blocker, llm_stub, web_stub) -> Iterator[LiveSystem]:  # type: ignore[no-untyped-def]
    """web + a conversation worker + a tools worker + beat, with web search at the stub."""
    system = LiveSystem(
        env={
            "SOMA_LLM_BASE_URL": f"{llm_stub.url}/v1",
            "SOMA_LLM_MODEL": "stub-model",
            "SOMA_SEARCH_URL": web_stub.url,
            **TOOLS_ENV,
        }
    )
    try:
        system.start_web()
        ensure_workers(system)
        system.start_beat()
        yield system
    finally:
        system.stop()


@pytest.fixture
def tools_system(tools_live: LiveSystem, live_db: None) -> LiveSystem:
    ensure_workers(tools_live)
    return tools_live


@contextmanager
def tool_settings(**changes: Any) -> Iterator[None]:
    """Override fields of ``settings.SOMA.tools`` in this process."""
    soma = dataclasses.replace(settings.SOMA, tools=dataclasses.replace(settings.SOMA.tools, **changes))
    with override_settings(SOMA=soma):
        yield
