"""What one turn costs the database: SQL statements and transactions, counted on every thread.

A count, not a time: the test fails when a change adds statements to the hot
path of a turn (claim, context, admission, deltas, finish). The turn runs in
this process against the stub model over real HTTP, with a zero-latency reply.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import connections

from conversations.models import EventType, Session, SessionEvent, Turn
from conversations.services.summary import SUMMARY_TOPIC
from conversations.turn.runner import turn_run
from somaagent.models import OutboxMessage, Tenant
from tests.statements import statements_on_every_thread

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stub_model(llm_stub: Any) -> Iterator[None]:
    """The stub model, and Redis keys of this test's own: a configuration change made by a
    test running beside this one bumps the shared cache version and would cost re-reads."""
    before, prefix = settings.SOMA, settings.REDIS_KEY_PREFIX
    settings.SOMA = dataclasses.replace(settings.SOMA, llm_base_url=f"{llm_stub.url}/v1", llm_model="stub")
    settings.REDIS_KEY_PREFIX = f"{prefix}cost-{uuid.uuid4().hex[:8]}:"
    try:
        yield
    finally:
        settings.SOMA, settings.REDIS_KEY_PREFIX = before, prefix


# Measured: 11 statements in 3 transactions per turn on PostgreSQL, 12 on SQLite (no
# RETURNING-combined writes there), for a tenant with a memory the turn's recall finds (the warm-up
# turn's, delivered first: ``_warm_up``); the check that it lies on a shown branch is in the
# recall's transaction (it was a fourth, in autocommit). 10 per memory delivery. The process-wide
# batchers that may or may not run inside the window are not counted (``BATCHERS``): the memory
# kick leases the writes of every turn that ended in the last moment in one statement, and the
# outbox marks its published rows in one; the benchmark (bench.turn_cost) counts their share per
# turn. The reply is one token, so the turn has one delta, whose cursor the claim took: no timing
# decides whether the reply goes out in one delta or two.
BATCHERS = ("memory-kicks", "outbox-marks")
TURN_LIMIT = {"postgresql": 11, "sqlite": 12}
TURN_TRANSACTIONS = 3
# A turn of a chat longer than its history window also reads the window into the prompt: one
# statement at the claim, the walk and its events, which reaches the messages just before the
# window too and so tells whether a summary run is due; its end then queues it (one outbox row)
# and reads nothing. That turn is 13 statements on PostgreSQL, 14 on SQLite, measured; a turn
# with no summary due, one less. The end used to check afresh (a savepoint, a walk of the
# branch's cursors, the summary row; 17 and 18), and before that walked the branch twice (22).
LONG_CHAT_LIMIT = {"postgresql": 13, "sqlite": 14}
# Delivering a turn's two memory writes to the embedded store: the task takes its lease, then for
# each write the item, its delivered mark and its WAL row (one transaction: the store is this
# database), and the lease of the stream's next write. 9 statements in 5 transactions, measured
# on both databases; the item was its own transaction before (8 transactions).
MEMORY_LIMIT = {"postgresql": 9, "sqlite": 9}
MEMORY_TRANSACTIONS = 5


def _limit(limits: dict[str, int]) -> int:
    return limits[connections["default"].vendor]


def _queued_turn(tenant: Tenant, message: str) -> Turn:
    session = Session.objects.create(tenant=tenant, last_seq=1)
    event = SessionEvent.objects.create(
        session=session, seq=1, type=EventType.USER_MESSAGE, role="user", payload={"message": message}
    )
    return Turn.objects.create(tenant=tenant, session=session, user_event=event)


def _warm_up(tenant: Tenant) -> None:
    """The tenant's first turn, and its memory delivered now. The measured turn's recall then finds
    that memory every time (and checks it is on a shown branch), not only when a delivery
    elsewhere happened to come first."""
    from memory.models import MemoryWrite
    from memory.services.delivery import claim_head, memory_deliver

    turn = _queued_turn(tenant, "warm up [[reply=ok]]")
    turn_run(turn_id=turn.pk, owner="warm")
    writes = MemoryWrite.objects.filter(session_id=turn.session_id)
    writes.exclude(state="delivered").update(lease_owner="", lease_until=None)
    while (claim := claim_head(tenant_id=tenant.pk, session_id=turn.session_id)) is not None:
        memory_deliver(write_id=claim.write_id, token=claim.token)
    assert set(writes.values_list("state", flat=True)) == {"delivered"}


def test_a_turn_costs_a_bounded_number_of_statements(stub_model: None) -> None:
    tenant = Tenant.objects.create(name=f"cost-{uuid.uuid4().hex[:8]}")
    # The tenant's first turn in a process reads its settings and budgets; later ones do not.
    _warm_up(tenant)
    turn = _queued_turn(tenant, "hello [[reply=Hello]]")
    with statements_on_every_thread(ignoring=BATCHERS) as seen:
        turn_run(turn_id=turn.pk, owner="w1")
    turn.refresh_from_db()
    assert turn.status == Turn.Status.COMPLETED
    print(f"{len(seen.sql)} statements, {seen.transactions()} transactions:\n" + seen.listing(400))
    assert len(seen.sql) <= _limit(TURN_LIMIT)
    assert seen.transactions() <= TURN_TRANSACTIONS


def test_a_turn_of_a_long_chat_costs_a_bounded_number_of_statements(stub_model: None) -> None:
    from django.db import transaction

    from conversations.services.events import event_append

    tenant = Tenant.objects.create(name=f"cost-{uuid.uuid4().hex[:8]}")
    _warm_up(tenant)
    session = Session.objects.create(tenant=tenant)
    window = settings.SOMA.history_window_events
    with transaction.atomic():
        for i in range(window + 30):  # past the window, and past a summary step
            reply = i % 2 == 1
            event_append(
                session_id=session.pk,
                type=EventType.ASSISTANT_FINAL if reply else EventType.USER_MESSAGE,
                data={"message": f"message {i}"},
                publish=False,
            )
        event = event_append(
            session_id=session.pk,
            type=EventType.USER_MESSAGE,
            data={"message": "and now? [[reply=Now]]"},
            publish=False,
        )
    turn = Turn.objects.create(tenant=tenant, session=session, user_event=event)
    with statements_on_every_thread(ignoring=BATCHERS) as seen:
        turn_run(turn_id=turn.pk, owner="w1")
    turn.refresh_from_db()
    assert turn.status == Turn.Status.COMPLETED
    print(f"{len(seen.sql)} statements, {seen.transactions()} transactions:\n" + seen.listing(400))
    queued = OutboxMessage.objects.get(topic=SUMMARY_TOPIC, payload__session_id=str(session.pk))
    answer = SessionEvent.objects.filter(session=session, type=EventType.ASSISTANT_FINAL).latest("seq")
    assert queued.payload["leaf"] == str(answer.event_id), "the summary run of the reply's branch"
    walks = [sql for sql in seen.sql if sql.lstrip().startswith("WITH RECURSIVE")]
    assert len(walks) == 1, "the branch is walked once, for the prompt; the end reads nothing for it"
    assert len(seen.sql) <= _limit(LONG_CHAT_LIMIT)
    assert seen.transactions() <= TURN_TRANSACTIONS


def test_delivering_a_turns_memory_costs_a_bounded_number_of_statements(stub_model: None) -> None:
    from memory.models import MemoryWrite
    from memory.services.delivery import claim_head, memory_deliver

    tenant = Tenant.objects.create(name=f"cost-{uuid.uuid4().hex[:8]}")
    turn = _queued_turn(tenant, "remember me [[reply=Noted]]")
    turn_run(turn_id=turn.pk, owner="w1")
    MemoryWrite.objects.filter(session_id=turn.session_id).update(lease_owner="", lease_until=None)
    claim = claim_head(tenant_id=tenant.pk, session_id=turn.session_id)
    assert claim is not None
    with statements_on_every_thread(ignoring=BATCHERS) as seen:  # the turn's own kick may run now
        memory_deliver(write_id=claim.write_id, token=claim.token)
    assert set(MemoryWrite.objects.filter(session_id=turn.session_id).values_list("state", flat=True)) == {
        "delivered"
    }
    print(f"{len(seen.sql)} statements, {seen.transactions()} transactions:\n" + seen.listing(300))
    assert len(seen.sql) <= _limit(MEMORY_LIMIT)
    assert seen.transactions() <= MEMORY_TRANSACTIONS
