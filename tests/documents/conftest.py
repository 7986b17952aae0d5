"""Fixtures of the documents tests: the web chat's browser (citations test) and the stub
embeddings endpoint, configured for one test (``embeddings``)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from documents.conf import documents_settings
from documents.embeddings import embedder
from tests.live import StubServer
from tests.webchat.conftest import browser, chat_page, chat_user  # noqa: F401

STUB_MODEL = "stub-embed"
STUB_KEY = "sk-stub-test"


@pytest.fixture(scope="session")
def embeddings_stub() -> Iterator[StubServer]:
    server = StubServer("tests.stubs.embeddings_server")
    yield server
    server.stop()


def embeddings_reload() -> None:
    """Read the embeddings settings again (after a change of environment)."""
    documents_settings.cache_clear()
    embedder.cache_clear()


@pytest.fixture
def embeddings(embeddings_stub: StubServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[StubServer]:
    """SOMA_EMBEDDINGS_URL set to the stub (faults cleared, requests forgotten) for one test."""
    httpx.post(f"{embeddings_stub.url}/_control", json={"reset": True}).raise_for_status()
    httpx.delete(f"{embeddings_stub.url}/_requests").raise_for_status()
    monkeypatch.setenv("SOMA_EMBEDDINGS_URL", f"{embeddings_stub.url}/v1")
    monkeypatch.setenv("SOMA_EMBEDDINGS_MODEL", STUB_MODEL)
    monkeypatch.setenv("SOMA_EMBEDDINGS_API_KEY", STUB_KEY)
    embeddings_reload()
    yield embeddings_stub
    embeddings_reload()
