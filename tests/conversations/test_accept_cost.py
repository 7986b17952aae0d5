"""What one accept costs the database, and that the caches it leans on stay correct.

A count, not a time: ``POST /v1/session/message`` is one transaction of at
most four statements (new session or existing one), counted on every thread
of this process while the request runs in-process. The API key, policy data
and budgets come from per-version caches, the outbox's published mark comes
later in a batch; the last test checks the price of the key cache — a key
revoked by another process stops working at the web process within the
freshness window.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from conversations.models import IdempotencyRecord, Turn
from somaagent import outbox
from somaagent.batcher import Batcher
from somaagent.identity.apikeys import KEY_RE, api_key_revoke
from somaagent.models import OutboxMessage
from somaagent.outbox import outbox_marks_flush
from somaagent.versioned import Versioned
from tests.conftest import make_tenant_key
from tests.conversations.api_support import Api
from tests.live import LiveSystem
from tests.statements import Statements, statements_on_every_thread

# Statements of one accept on the hot path: session insert (or read), event, turn, outbox row.
# SQLite takes the event's cursor and inserts the event in two (no data-modifying CTE there).
ACCEPT_STATEMENTS = 4 if connection.vendor == "postgresql" else 5


@pytest.fixture(autouse=True)
def _marks_only_when_flushed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The published marks of this test's accepts wait for ``outbox_marks_flush`` (no timer)."""
    monkeypatch.setattr(outbox, "_marks", Batcher("test-marks", outbox._mark_many, interval=3600))


def _accept(api: Api, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    r = api.post_message(body, **kwargs)
    assert r.status_code == 202, r.content
    return dict(r.json())


@pytest.fixture(autouse=True)
def quiet_marker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Only the accepts write inside a counting window: the outbox marker thread, which writes
    ``SOMA_OUTBOX_MARK_INTERVAL_SECONDS`` (0.2 s) after a mark, fired inside windows on a
    loaded machine (an earlier accept's mark). Here it waits 2 s, and one still asleep on the
    old interval has woken before the test starts."""
    monkeypatch.setattr(outbox._marks, "interval", 2.0)
    outbox_marks_flush()
    time.sleep(0.3)
    outbox_marks_flush()
    yield
    outbox_marks_flush()


def _report(seen: Statements) -> None:
    print(f"{len(seen.sql)} statements in {seen.transactions()} transactions:\n{seen.listing()}")


@pytest.mark.django_db(transaction=True)
def test_accepting_a_message_in_a_new_session_is_one_transaction(api: Api) -> None:
    _accept(api, {"message": "warm up"})  # the process reads the key, policy data, budgets once
    with statements_on_every_thread() as seen:
        body = _accept(api, {"message": "hello"})
    _report(seen)
    assert len(seen.sql) <= ACCEPT_STATEMENTS
    assert seen.transactions() == 1
    turn = Turn.objects.get(pk=body["turn_id"])
    assert turn.dispatched_at is not None
    assert OutboxMessage.objects.filter(payload={"turn_id": body["turn_id"]}).count() == 1


@pytest.mark.django_db(transaction=True)
def test_accepting_a_message_in_an_existing_session_is_one_transaction(api: Api) -> None:
    sid = _accept(api, {"message": "warm up"})["session_id"]
    Turn.objects.filter(session_id=sid).update(status=Turn.Status.COMPLETED)  # its reply is done
    with statements_on_every_thread() as seen:
        body = _accept(api, {"message": "hello", "session_id": sid})
    _report(seen)
    assert len(seen.sql) <= ACCEPT_STATEMENTS
    assert seen.transactions() == 1
    assert Turn.objects.get(pk=body["turn_id"]).dispatched_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_message_behind_a_running_turn_waits_at_the_same_cost(api: Api) -> None:
    sid = _accept(api, {"message": "warm up"})["session_id"]  # its turn is still queued
    with statements_on_every_thread() as seen:
        body = _accept(api, {"message": "hello", "session_id": sid})
    _report(seen)
    assert len(seen.sql) <= ACCEPT_STATEMENTS - 1  # no outbox row: the running turn dispatches it
    assert seen.transactions() == 1
    assert Turn.objects.get(pk=body["turn_id"]).dispatched_at is None
    assert not OutboxMessage.objects.filter(payload={"turn_id": body["turn_id"]}).exists()


@pytest.mark.django_db(transaction=True)
def test_an_idempotency_key_adds_a_read_and_a_write_and_a_replay_is_one_read(api: Api) -> None:
    _accept(api, {"message": "warm up"}, headers={"Idempotency-Key": "cost-0"})
    with statements_on_every_thread() as seen:
        first = _accept(api, {"message": "hello"}, headers={"Idempotency-Key": "cost-1"})
    _report(seen)
    assert len(seen.sql) <= ACCEPT_STATEMENTS + 2
    assert seen.transactions() == 1
    with statements_on_every_thread() as seen:
        again = _accept(api, {"message": "hello"}, headers={"Idempotency-Key": "cost-1"})
    assert again == first
    assert len(seen.sql) == 1 and seen.transactions() == 1
    assert IdempotencyRecord.objects.filter(key="cost-1").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_outbox_marks_many_published_rows_in_one_statement(api: Api) -> None:
    _accept(api, {"message": "warm up"})
    outbox_marks_flush()
    with statements_on_every_thread() as seen:
        turn_ids = [_accept(api, {"message": f"m{i}"})["turn_id"] for i in range(5)]
        outbox_marks_flush()
    _report(seen)
    assert len(seen.sql) <= 5 * ACCEPT_STATEMENTS + 1
    assert seen.count('UPDATE "OUTBOX"') == 1  # marks every row published so far
    rows = OutboxMessage.objects.filter(payload__turn_id__in=turn_ids)
    assert rows.count() == 5 and not rows.filter(published_at__isnull=True).exists()


@pytest.mark.integration
def test_a_key_revoked_elsewhere_stops_working_at_the_web_process_within_a_second(
    live_system: LiveSystem,
) -> None:
    """The web process caches the key; a revocation in another process reaches it within the window."""
    tk = make_tenant_key()
    window = Versioned("probe", lambda _: None).fresh_for  # SOMA_CACHE_FRESH_SECONDS, as the web sees it
    with live_system.client(tk.key) as c:
        assert c.get("/v1/sessions").status_code == 200  # the web process now holds the key
        assert c.get("/v1/sessions").status_code == 200
        match = KEY_RE.match(tk.key)
        assert match is not None
        revoked = time.monotonic()
        assert api_key_revoke(prefix=match.group(1)) is not None
        status = 200
        while status != 401 and time.monotonic() - revoked < window + 5:
            status = c.get("/v1/sessions").status_code
            if status != 401:
                time.sleep(0.02)
        took = time.monotonic() - revoked
    assert status == 401
    assert took <= window + 0.5, f"the revoked key still worked {took:.2f} s after its revocation"
