"""The OpenAPI document at /v1/openapi.json is exact: a seeded, deterministic schemathesis run
against the real ASGI server finds nothing (no 5xx, no undocumented status or content type, no
response off its schema, no valid request refused, no invalid one accepted).

``SOMA_FUZZ_EXAMPLES`` sets the examples per operation: a few here, many under ``make fuzz``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.config._checks import NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES

from somaagent.identity.apikeys import api_key_create
from somaagent.identity.scopes import ALL_SCOPES
from somaagent.models import UISetting
from somaagent.upload_limits import UPLOADS_SETTING
from tests.conftest import make_tenant_key
from tests.live import LiveSystem

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("SOMA_FUZZ_EXAMPLES", "4"))


@pytest.fixture(scope="module")
def fuzz_web(django_db_setup, django_db_blocker) -> Iterator[LiveSystem]:
    # An outage answers 503 within 1.5 s by design; on a busy test machine that would be a
    # spurious "server error" here, so this server waits for its database connections longer.
    system = LiveSystem(env={"SOMA_DB_POOL_TIMEOUT_SECONDS": "15", "SOMA_DB_CONNECT_TIMEOUT_SECONDS": "15"})
    try:
        system.start_web()
        yield system
    finally:
        system.stop()


@pytest.fixture(scope="module")
def fuzz_key(fuzz_web: LiveSystem, django_db_blocker) -> str:
    """A key with every scope and room for the run's requests within its rate limit."""
    with django_db_blocker.unblock():
        tenant: Any = make_tenant_key().tenant
        _, raw = api_key_create(
            tenant=tenant, name="fuzz", scopes=list(ALL_SCOPES), rate_limit_per_minute=1_000_000
        )
    return raw


@pytest.fixture(scope="module")
def any_upload_type(django_db_blocker) -> Iterator[None]:
    """The allowed upload types are a setting (415 outside them): the run allows them all, so
    that no valid upload is refused for its type."""
    with django_db_blocker.unblock():
        row, _ = UISetting.objects.get_or_create(key=UPLOADS_SETTING, defaults={"document": {}})
        before = row.document
        row.document = {**(before or {}), "allowed_mime_types": ["*/*"]}
        row.save()
        try:
            yield
        finally:
            row.document = before
            row.save()


@pytest.fixture(scope="module")
def api_schema(fuzz_web: LiveSystem) -> Any:
    # Schemathesis' defaults, plus 413: a value past a documented maximum (the message's length)
    # is refused as too large (SPEC §6), which is a refusal like 400.
    rejected = [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]
    config = schemathesis.Config.from_dict(
        {
            "checks": {"negative_data_rejection": {"expected-statuses": rejected}},
            # An import file is valid by references JSON Schema cannot state (a ChatGPT
            # conversation's current_node must name a node of its mapping): a generated file
            # that fits the schema may still be a bad file, which is a 400 by design. Every
            # other check runs on it (no 5xx, statuses and bodies as documented).
            # A webhook's URL must parse as an https URL, a schedule's cron must parse and name a
            # time zone that exists, and a tenant has at most so many of each: none of it is a
            # JSON Schema constraint, so a generated body may be refused by design.
            "operations": [
                {"include-path": "/v1/import", "checks": {"positive_data_acceptance": {"enabled": False}}},
                {
                    "include-path-regex": "^/v1/(webhooks|schedules)",
                    "checks": {"positive_data_acceptance": {"enabled": False}},
                },
            ],
        }
    )
    return schemathesis.openapi.from_url(f"{fuzz_web.url}/v1/openapi.json", config=config)


def test_the_document_is_served_as_json(fuzz_web: LiveSystem) -> None:
    r = httpx.get(f"{fuzz_web.url}/v1/openapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["openapi"].startswith("3.")


def _run(operation: Any, mode: GenerationMode, key: str) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,  # seeded: the same cases on every run
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, timeout=30)

    check()


def test_the_api_answers_as_its_document_says(api_schema: Any, fuzz_key: str, any_upload_type: None) -> None:
    failures = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _run(operation, mode, fuzz_key)
            except (Exception, BaseExceptionGroup) as exc:  # every operation runs; all failures reported
                failures.append(f"--- {operation.label} ({mode.value}) ---\n{exc}")
    assert not failures, "\n\n".join(failures)
