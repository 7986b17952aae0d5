"""Shared fixtures: a live system of real processes, stub servers, tenants with API keys."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.live import LiveSystem, StubServer


@dataclass
class TenantKey:
    tenant: object
    key: str
    name: str


def make_tenant_key(name: str | None = None) -> TenantKey:
    from somaagent.identity.apikeys import api_key_create, tenant_get_or_create

    name = name or f"tenant-{uuid.uuid4().hex[:10]}"
    tenant = tenant_get_or_create(name=name)
    _, raw = api_key_create(tenant=tenant, name="test")
    return TenantKey(tenant=tenant, key=raw, name=name)


@pytest.fixture(scope="session", autouse=True)
def _flush_retried_on_deadlock() -> Iterator[None]:
    """A transactional test ends with a TRUNCATE of every table while the live systems' beats and
    workers keep working on the same database; PostgreSQL may pick the TRUNCATE as a deadlock's
    victim. It runs in one transaction, so it is tried again (a few times) instead of failing the
    test's teardown."""
    from django.db import OperationalError
    from django.test import TransactionTestCase

    original = TransactionTestCase._fixture_teardown  # type: ignore[attr-defined]  # not in the stubs

    def teardown(self: TransactionTestCase) -> None:
        for attempt in range(5):
            try:
                return original(self)
            except Exception as exc:  # flush wraps the OperationalError in a CommandError
                cause = exc if isinstance(exc, OperationalError) else exc.__cause__ or exc.__context__
                if attempt == 4 or not isinstance(cause, OperationalError) or "deadlock" not in str(cause):
                    raise
                time.sleep(0.2 * (attempt + 1))

    TransactionTestCase._fixture_teardown = teardown  # type: ignore[attr-defined]
    yield
    TransactionTestCase._fixture_teardown = original  # type: ignore[attr-defined]


@pytest.fixture(scope="session", autouse=True)
def _async_db_on_the_test_thread() -> Iterator[None]:
    """In-process async views (SSE via the test Client) see the test transaction's rows."""
    from somaagent.async_db import run_inline

    run_inline(True)
    yield
    run_inline(False)


@pytest.fixture(scope="session")
def django_db_setup(
    request, django_test_environment, django_db_blocker, django_db_keepdb, django_db_modify_db_settings
):
    """Always create the default test database, also for tests that reach it from other processes.

    pytest-django only sets up databases that tests mark with ``django_db``;
    integration tests read and write through real processes instead.
    """
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        db_cfg = setup_databases(
            verbosity=request.config.option.verbose,
            interactive=False,
            keepdb=django_db_keepdb,
            aliases={"default"},
        )
    yield
    if not django_db_keepdb:
        with django_db_blocker.unblock():
            teardown_databases(db_cfg, verbosity=request.config.option.verbose)


@pytest.fixture(scope="session")
def llm_stub() -> Iterator[StubServer]:
    server = StubServer("tests.stubs.llm_server")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def oidc_stub() -> Iterator[StubServer]:
    """A stub OpenID provider (single sign-on tests: tests/somaagent/oidc, the browser test)."""
    server = StubServer("tests.stubs.oidc_provider")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def web_stub() -> Iterator[StubServer]:
    """A stub web: SearxNG-compatible search and pages for http_fetch."""
    server = StubServer("tests.stubs.web_server")
    yield server
    server.stop()


# Small tool limits so tool tests finish in seconds (tests/tools).
TOOLS_TEST_ENV = {
    "SOMA_TOOL_MAX_CALLS_PER_TURN": "3",
    "SOMA_TOOL_TIMEOUT_SECONDS": "8",
    "SOMA_SANDBOX_WALL_SECONDS": "8",
    "SOMA_TOOL_QUEUE_GRACE_SECONDS": "10",
    "SOMA_TOOL_BREAKER_FAILURES": "2",
}


@pytest.fixture(scope="session")
def live(
    django_db_setup, django_db_blocker, llm_stub: StubServer, web_stub: StubServer
) -> Iterator[LiveSystem]:
    """web + workers + beat on the test database, answering with the stub model.

    Workers are split as in the Procfile: one for conversation/memory/default, one for tool calls.
    """
    system = LiveSystem(
        env={
            "SOMA_LLM_BASE_URL": f"{llm_stub.url}/v1",
            "SOMA_LLM_MODEL": "stub-model",
            "SOMA_SEARCH_URL": web_stub.url,
            **TOOLS_TEST_ENV,
        },
        worker_queues=("conversation,memory,default", "tools"),
    )
    try:
        system.start()
        yield system
    finally:
        system.stop()


@pytest.fixture
def live_db(django_db_setup, django_db_blocker) -> Iterator[None]:
    """Database access outside a test transaction: rows are visible to the live processes."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def live_system(live: LiveSystem, live_db: None) -> LiveSystem:
    live.ensure_worker()
    return live


@pytest.fixture
def tenant_key(live_db: None) -> TenantKey:
    return make_tenant_key()


@pytest.fixture
def other_tenant_key(live_db: None) -> TenantKey:
    return make_tenant_key()
