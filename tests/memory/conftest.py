"""Fixtures for memory tests: the stub memory service, a remote adapter on it, a live system using it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.live import LiveSystem, StubServer

TOKEN = "stub-memory-token"


class MemoryStub:
    """The stub SomaBrain service (tests/stubs/memory_server.py) with helpers to drive it."""

    def __init__(self) -> None:
        self.server: StubServer | None = StubServer("tests.stubs.memory_server", "--token", TOKEN)
        self.port = self.server.port
        self.url = self.server.url

    def control(self, doc: dict[str, Any]) -> None:
        httpx.post(f"{self.url}/_control", json=doc, timeout=10).raise_for_status()

    def reset(self) -> None:
        self.control({"reset": True})

    def stored(self, *, tenant: object) -> list[dict[str, Any]]:
        items = httpx.get(f"{self.url}/_stored", timeout=10).json()["items"]
        return [i for i in items if i["tenant"] == str(getattr(tenant, "pk", tenant))]

    def forgotten(self, *, tenant: object) -> list[dict[str, Any]]:
        calls = httpx.get(f"{self.url}/_forgotten", timeout=10).json()
        return [c for c in calls if c["tenant"] == str(getattr(tenant, "pk", tenant))]

    def requests(self, endpoint: str, *, tenant: object) -> list[dict[str, Any]]:
        tenant_id = str(getattr(tenant, "pk", tenant))
        return [
            r
            for r in httpx.get(f"{self.url}/_requests", timeout=10).json()
            if r["endpoint"] == endpoint and (r["body"] or {}).get("tenant") == tenant_id
        ]

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def start(self) -> None:
        """Start again on the same port (a fresh, empty service)."""
        self.server = StubServer("tests.stubs.memory_server", "--port", str(self.port), "--token", TOKEN)


@pytest.fixture(scope="session")
def memory_stub() -> Iterator[MemoryStub]:
    stub = MemoryStub()
    yield stub
    stub.stop()


@pytest.fixture
def stub(memory_stub: MemoryStub) -> MemoryStub:
    """The stub with no faults set."""
    if memory_stub.server is None:
        memory_stub.start()
    memory_stub.reset()
    return memory_stub


@pytest.fixture
def remote_memory(stub: MemoryStub, settings: Any) -> Any:
    """An in-process remote adapter on the stub, with short timeouts."""
    from memory.adapters.remote import RemoteMemory

    config = dataclasses.replace(
        settings.SOMA.memory, url=stub.url, token=TOKEN, connect_timeout=1.0, timeout=2.0
    )
    settings.SOMA = dataclasses.replace(settings.SOMA, memory=config)
    return RemoteMemory(config)


REMOTE_ENV = {
    "SOMA_MEMORY_TOKEN": TOKEN,
    "SOMA_MEMORY_CONNECT_TIMEOUT": "1",
    "SOMA_MEMORY_TIMEOUT": "3",
    "SOMA_MEMORY_RECALL_TIMEOUT": "1",
}


@pytest.fixture(scope="module")
def remote_live(live: LiveSystem, memory_stub: MemoryStub) -> Iterator[LiveSystem]:
    """The live system (web, worker, beat) restarted to use the stub memory service; restored after."""
    live.restart(env={"SOMA_MEMORY_URL": memory_stub.url, **REMOTE_ENV})
    try:
        yield live
    finally:
        live.restart(env={"SOMA_MEMORY_URL": ""})


@pytest.fixture
def memory_system(remote_live: LiveSystem, live_db: None, stub: MemoryStub) -> LiveSystem:
    remote_live.ensure_worker()
    return remote_live
