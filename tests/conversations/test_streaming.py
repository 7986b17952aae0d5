"""SessionFollower: merges the Redis stream buffer and the database by cursor, on real Redis and DB.

Each test lays out a session the way a crash or an expiry can leave it: a
persisted event whose buffer copy was lost, a delta that expired, copies in
both places. The follower runs under ``async_to_sync`` so its database calls
happen in this thread and see the test's transaction.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace as dataclass_replace
from typing import Any

import pytest
import redis
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations import stream_buffer
from conversations.envelope import Envelope, envelope_of, make_envelope
from conversations.models import EventType, Session, SessionEvent, Turn
from conversations.streaming import HEARTBEAT, SessionFollower
from conversations.turn.end import turn_ended
from tests.conftest import make_tenant_key

pytestmark = pytest.mark.django_db


class Layout:
    """A session whose events sit in the database, the buffer, both or neither, by cursor."""

    def __init__(self) -> None:
        tenant: Any = make_tenant_key().tenant
        self.session = Session.objects.create(tenant=tenant)
        self.sid = str(self.session.pk)

    def persisted(self, seq: int, *, buffered: bool = True) -> Envelope:
        event = SessionEvent.objects.create(
            session=self.session,
            seq=seq,
            type=EventType.ASSISTANT_STARTED,
            role="assistant",
            payload={"n": seq},
        )
        Session.objects.filter(pk=self.session.pk, last_seq__lt=seq).update(last_seq=seq)
        envelope = envelope_of(event)
        if buffered:
            stream_buffer.publish(envelope)
        return envelope

    def _delta_envelope(self, seq: int) -> Envelope:
        return make_envelope(
            seq=seq,
            event_id=uuid.uuid4(),
            session_id=self.sid,
            type=EventType.ASSISTANT_DELTA,
            role="assistant",
            occurred_at=timezone.now(),
            data={"text": f"d{seq}", "index": seq},
        )

    def ahead(self, seq: int) -> None:
        """Buffer a delta with cursor ``seq`` that the database has not handed out yet."""
        stream_buffer.publish(self._delta_envelope(seq))

    def delta(self, seq: int, *, buffered: bool = True) -> Envelope:
        envelope = self._delta_envelope(seq)
        Session.objects.filter(pk=self.session.pk, last_seq__lt=seq).update(last_seq=seq)
        if buffered:  # not buffered: it expired (deltas live only in the buffer)
            stream_buffer.publish(envelope)
        return envelope


async def _take(follower: SessionFollower, it: Any, *, until_quiet: bool = True) -> list[int]:
    """Cursors the follower yields until its first heartbeat (nothing more to say)."""
    out: list[int] = []
    async with asyncio.timeout(20):
        while True:
            envelope = await it.__anext__()
            if envelope is HEARTBEAT:
                return out
            out.append(int(envelope["id"]))


def follow(layout: Layout, after: int = 0, then: Callable[[Any], Awaitable[list[int]]] | None = None) -> Any:
    """Run a follower: what it replays, then (optionally) what it yields after ``then``'s writes."""

    async def run() -> tuple[list[int], list[int]]:
        follower = SessionFollower(layout.session.pk, after, heartbeat=0.3)
        it: Any = follower.__aiter__()
        replayed = await _take(follower, it)
        live: list[int] = []
        if then is not None:
            await then(layout)
            live = await _take(follower, it)
        await it.aclose()
        return replayed, live

    return async_to_sync(run)()


def test_replay_merges_buffer_and_database_without_duplicates() -> None:
    s = Layout()
    s.persisted(1)
    s.persisted(2)
    s.delta(3)
    s.delta(4)
    s.persisted(5)
    replayed, _ = follow(s)
    assert replayed == [1, 2, 3, 4, 5]


def test_replay_fills_events_missing_from_the_buffer_from_the_database() -> None:
    s = Layout()
    s.persisted(1)
    s.persisted(2, buffered=False)  # its buffer publish failed after commit
    s.delta(3)
    s.persisted(4, buffered=False)
    s.delta(5)
    replayed, _ = follow(s)
    assert replayed == [1, 2, 3, 4, 5]


def test_replay_skips_expired_deltas() -> None:
    s = Layout()
    s.persisted(1)
    s.delta(2, buffered=False)
    s.delta(3, buffered=False)
    s.persisted(4)
    s.delta(5)
    replayed, _ = follow(s)
    assert replayed == [1, 4, 5]


def test_replay_with_an_empty_buffer_reads_the_database() -> None:
    s = Layout()
    for seq in range(1, 4):
        s.persisted(seq, buffered=False)
    assert follow(s)[0] == [1, 2, 3]


def test_replay_starts_after_the_cursor() -> None:
    s = Layout()
    s.persisted(1)
    s.delta(2)
    s.delta(3)
    s.persisted(4)
    assert follow(s, after=2)[0] == [3, 4]
    assert follow(s, after=4)[0] == []


def replay_only(layout: Layout, count: int, after: int = 0) -> tuple[list[int], int]:
    """The first ``count`` cursors a follower yields, and the SQL statements it ran for them."""

    async def run() -> list[int]:
        it: Any = SessionFollower(layout.session.pk, after, heartbeat=0.3).__aiter__()
        try:
            return [int((await it.__anext__())["id"]) for _ in range(count)]
        finally:
            await it.aclose()

    with CaptureQueriesContext(connection) as queries:
        cursors = async_to_sync(run)()
    return cursors, len(queries)


def test_replay_reads_only_the_buffer_when_it_holds_every_cursor_after_the_readers() -> None:
    s = Layout()
    s.persisted(1)
    s.delta(2)
    s.persisted(3)
    assert replay_only(s, 3) == ([1, 2, 3], 0)
    assert replay_only(s, 1, after=2) == ([3], 0)


def test_replay_reads_the_database_when_the_buffer_misses_a_cursor() -> None:
    s = Layout()
    s.persisted(1, buffered=False)  # the buffer starts after the reader's cursor
    s.persisted(2)
    cursors, statements = replay_only(s, 2)
    assert cursors == [1, 2] and statements > 0


def test_an_event_after_the_buffers_last_whose_copy_was_lost_comes_from_the_database() -> None:
    s = Layout()
    s.persisted(1)
    s.persisted(2, buffered=False)  # committed, its publish failed: the buffer ends at 1
    assert follow(s)[0] == [1, 2]  # replayed from the buffer, then caught up while quiet


def test_live_events_in_order_with_holes_filled() -> None:
    s = Layout()
    s.persisted(1)

    async def writes(layout: Layout) -> list[int]:
        def write() -> None:
            layout.delta(2)
            layout.persisted(3, buffered=False)  # only the database has it
            layout.delta(4, buffered=False)  # expired before anyone read it
            layout.delta(5)
            six = layout.delta(6)
            with pytest.raises(stream_buffer.OutOfOrder):
                stream_buffer.publish(six)  # the buffer never holds a cursor twice
            layout.persisted(7)

        await sync_to_async(write)()
        return []

    replayed, live = follow(s, then=writes)
    assert replayed == [1]
    assert live == [2, 3, 5, 6, 7]


def test_a_quiet_follower_catches_up_from_the_database() -> None:
    """A persisted event whose buffer copy was lost still arrives, on the next quiet poll."""
    s = Layout()
    s.persisted(1)

    async def writes(layout: Layout) -> list[int]:
        await sync_to_async(layout.persisted)(2, buffered=False)
        return []

    replayed, live = follow(s, then=writes)
    assert replayed == [1] and live == [2]


def test_deltas_reach_the_buffer_only_after_their_cursor_is_committed() -> None:
    """A delta buffered inside its transaction would keep a cursor that a rollback (a worker
    killed before its commit) hands out again: readers would then drop the next event."""
    from django.db import transaction

    from conversations.services.events import delta_cursor_take

    s = Layout()
    s.persisted(1)
    with pytest.raises(RuntimeError, match="durable"), transaction.atomic():
        delta_cursor_take(session_id=s.session.pk)
    s.session.refresh_from_db()
    assert s.session.last_seq == 1
    assert delta_cursor_take(session_id=s.session.pk) == 2
    s.session.refresh_from_db()
    assert s.session.last_seq == 2


@pytest.mark.django_db(transaction=True)  # outside any transaction, as on a delta writer thread
def test_a_delta_cursor_is_one_statement_that_commits_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """No BEGIN and COMMIT around it: on a busy worker each round trip waits for the GIL."""
    from django.db import connections

    from conversations.services.events import delta_cursor_take

    s = Layout()
    s.persisted(1)
    commits: list[bool] = []
    wrapper: Any = type(connections["default"])
    real_commit = wrapper._commit

    def counting_commit(self: Any) -> None:
        commits.append(True)
        real_commit(self)

    monkeypatch.setattr(wrapper, "_commit", counting_commit)
    assert delta_cursor_take(session_id=s.session.pk) == 2
    assert commits == [], commits
    assert Session.objects.get(pk=s.session.pk).last_seq == 2


def test_a_delta_cursor_is_refused_to_a_worker_without_the_lease() -> None:
    from conversations.models import Turn
    from conversations.services.events import GuardFailed, delta_cursor_take
    from conversations.turn.claim import turn_claim

    s = Layout()
    s.persisted(1)
    turn = Turn.objects.create(
        tenant=s.session.tenant, session=s.session, user_event_id=SessionEvent.objects.get(seq=1).pk
    )
    assert turn_claim(turn_id=turn.pk, owner="w1", ended=turn_ended) is not None
    assert delta_cursor_take(session_id=s.session.pk, lease=(turn.pk, "w1")) == 2
    with pytest.raises(GuardFailed):
        delta_cursor_take(session_id=s.session.pk, lease=(turn.pk, "w2"))
    s.session.refresh_from_db()
    assert s.session.last_seq == 2, "a refused delta takes no cursor"


def test_an_event_that_loses_the_race_to_the_buffer_is_refused_and_read_from_the_database() -> None:
    from conversations.services.events import delta_cursor_take, delta_publish

    s = Layout()
    s.persisted(1)
    late = s.persisted(2, buffered=False)  # committed, its buffer publish not done yet
    s.delta(3)  # a later cursor reaches the buffer first
    with pytest.raises(stream_buffer.OutOfOrder):
        stream_buffer.publish(late)
    stream_buffer.publish_best_effort(late)  # the after-commit hook shrugs it off
    assert follow(s)[0] == [1, 2, 3]

    # A delta that loses the race: its cursor is committed but never buffered; readers skip it.
    s.ahead(5)  # as if cursor 5 were taken and buffered first
    with pytest.raises(stream_buffer.OutOfOrder):
        delta_publish(
            session_id=s.session.pk,
            seq=delta_cursor_take(session_id=s.session.pk),  # takes cursor 4
            data={"text": "resend me", "index": 1},
        )
    s.session.refresh_from_db()
    assert s.session.last_seq == 4
    Session.objects.filter(pk=s.session.pk).update(last_seq=5)
    assert follow(s, after=3)[0] == [5]


def test_batched_publishes_share_one_round_trip_and_shrug_off_the_one_that_lost_the_race() -> None:
    s, other = Layout(), Layout()
    s.persisted(1)
    late = s.persisted(2, buffered=False)
    s.delta(3)  # cursor 3 reached the buffer before 2's batched publish
    fresh = other.persisted(1, buffered=False)
    stream_buffer.publish_soon(late)
    stream_buffer.publish_soon(fresh)
    stream_buffer.publish_soon_flush()  # the publisher thread's round, done here (or already done)
    assert follow(s)[0] == [1, 2, 3], "2 is read from the database"
    assert [int(e["id"]) for _, e in async_to_sync(stream_buffer.read_all)(other.sid)] == [1]


def test_an_accepted_message_reaches_the_buffer_by_the_publisher_thread(
    django_capture_on_commit_callbacks: Any,
) -> None:
    from django.test import Client

    client = Client(headers={"Authorization": f"Bearer {make_tenant_key().key}"})
    with _holding_the_publisher():
        with django_capture_on_commit_callbacks(execute=True) as hooks:
            r = client.post("/v1/session/message", {"message": "hi"}, content_type="application/json")
        assert r.status_code == 202, r.content
        assert hooks, "the after-commit work ran"
        sid = r.json()["session_id"]
        assert async_to_sync(stream_buffer.read_all)(sid) == [], "the answer did not wait for Redis"
    stream_buffer.publish_soon_flush()  # after the thread's own round, if it has not run yet
    [(_, envelope)] = async_to_sync(stream_buffer.read_all)(sid)
    assert envelope["type"] == "user.message"


@contextmanager
def _holding_the_publisher() -> Iterator[None]:
    """The publisher thread's round waits while this holds its lock (what a busy thread does)."""
    with stream_buffer._soon._handling:
        yield


def test_the_publisher_sends_text_again_after_losing_the_race() -> None:
    from conversations.models import Turn
    from conversations.turn.claim import turn_claim
    from conversations.turn.publisher import DeltaPublisher
    from conversations.turn.watch import Watched

    s = Layout()
    user = s.persisted(1)
    turn = Turn.objects.create(
        tenant=s.session.tenant, session=s.session, user_event_id=SessionEvent.objects.get(seq=1).pk
    )
    claim = turn_claim(turn_id=turn.pk, owner="w1", ended=turn_ended)
    assert claim is not None and user["id"] == "1"
    s.ahead(3)  # cursors 2 and 3 will be refused by the buffer

    publisher = DeltaPublisher(Watched(claim))
    _publish(publisher, "hello ", "world")

    deltas = _buffered_deltas(s.sid)
    assert [(d["id"], d["data"]) for d in deltas] == [
        ("3", {"text": "d3", "index": 3}),
        ("4", {"text": "hello world", "index": 0}),
    ]


def _buffered_deltas(session_id: str) -> list[Envelope]:
    return [e for _, e in async_to_sync(stream_buffer.read_all)(session_id) if e["type"] == "assistant.delta"]


def _publish(*items: Any) -> None:
    """Each publisher given, followed by its texts, publishes them in the same rounds until done:
    the delta writer's job, run in this thread to see the test's transaction."""
    from conversations.turn.publisher import DeltaPublisher, publish_round

    publishers = [p for p in items if isinstance(p, DeltaPublisher)]
    current: Any = None
    for item in items:
        if isinstance(item, DeltaPublisher):
            current = item
            current._busy = True  # as if it waited for a round: add() only buffers
        else:
            current.add(item)
    batch = publishers
    for _ in range(5):
        batch = [p for p, _ in publish_round(batch)]
        if not batch:
            break
    assert not batch, "the publishers did not settle in five rounds"


def _started_turn(s: Layout) -> Any:
    """A user message at cursor 1 and its turn claimed by w1 (assistant.started at 2)."""
    from conversations.models import Turn
    from conversations.turn.claim import turn_claim

    s.persisted(1)
    message = SessionEvent.objects.get(session=s.session, seq=1)
    turn = Turn.objects.create(tenant=s.session.tenant, session=s.session, user_event_id=message.pk)
    return turn_claim(turn_id=turn.pk, owner="w1", ended=turn_ended, start=lambda c: "stub")


def test_the_turns_first_delta_has_the_cursor_its_claim_took() -> None:
    """assistant.started takes two cursors: its own and the first delta's, which then costs
    no statement; later deltas take theirs one by one, guarded by the lease."""
    from conversations.turn.publisher import DeltaPublisher
    from conversations.turn.watch import Watched

    s = Layout()
    claim = _started_turn(s)
    assert claim is not None and claim.first_cursor is not None and claim.first_cursor.seq == 3
    assert SessionEvent.objects.get(session=s.session, seq=2).payload["model"] == "stub"
    s.session.refresh_from_db()
    assert s.session.last_seq == 3

    publisher = DeltaPublisher(Watched(claim))
    _publish(publisher, "hello")
    s.session.refresh_from_db()
    assert s.session.last_seq == 3, "the first delta took no cursor of its own"
    _publish(publisher, " world")
    s.session.refresh_from_db()
    assert s.session.last_seq == 4

    deltas = _buffered_deltas(s.sid)
    assert [(d["id"], d["data"]["text"]) for d in deltas] == [("3", "hello"), ("4", " world")]


def test_a_turn_that_ends_before_any_delta_gives_its_end_the_reserved_cursor() -> None:
    """No hole: the terminal event reuses the cursor taken for a first delta that never came."""
    from conversations.turn.finish import turn_finish

    s = Layout()
    claim = _started_turn(s)
    assert claim is not None
    error = turn_finish(
        claim=claim,
        type=EventType.ASSISTANT_ERROR,
        data={"code": "llm_unavailable", "message": "down", "retryable": True},
        ended=turn_ended,
    )
    assert error.seq == 3
    s.session.refresh_from_db()
    assert s.session.last_seq == 3
    assert list(
        SessionEvent.objects.filter(session=s.session).order_by("seq").values_list("seq", flat=True)
    ) == [
        1,
        2,
        3,
    ]


def test_a_first_delta_whose_taken_cursor_lost_the_race_goes_out_with_a_guarded_one() -> None:
    from conversations.turn.publisher import DeltaPublisher
    from conversations.turn.watch import LEASE_LOST, Watched

    s = Layout()
    claim = _started_turn(s)
    assert claim is not None and claim.first_cursor is not None and claim.first_cursor.seq == 3
    s.ahead(4)  # a later event reached the buffer before the first delta

    publisher = DeltaPublisher(Watched(claim))
    _publish(publisher, "hello")
    deltas = _buffered_deltas(s.sid)
    assert [(d["id"], d["data"]["text"]) for d in deltas] == [("4", "d4"), ("5", "hello")]

    # Had the worker lost the lease meanwhile, the guarded cursor is refused and the turn stops.
    other = DeltaPublisher(Watched(dataclass_replace(claim, owner="w2")))
    _publish(other, "stale")
    assert other.stop_reason == LEASE_LOST
    s.session.refresh_from_db()
    assert s.session.last_seq == 5


def test_one_round_publishes_the_deltas_of_many_turns_with_one_statement() -> None:
    """A round takes every due delta's cursor in one statement, guarded by each turn's own
    lease: a turn whose lease is gone is stopped, the others' deltas go out."""
    from conversations.turn.publisher import DeltaPublisher
    from conversations.turn.watch import LEASE_LOST, Watched

    chats = [Layout() for _ in range(3)]
    publishers = []
    for s in chats:
        claim = _started_turn(s)
        assert claim is not None
        publisher = DeltaPublisher(Watched(claim))
        _publish(publisher, "first")  # the claim's reserved cursor (3): no statement
        publishers.append(publisher)
    # The third turn's lease passes to another worker.
    Turn.objects.filter(session=chats[2].session).update(lease_owner="w2")

    with CaptureQueriesContext(connection) as queries:
        _publish(publishers[0], "a", " b", publishers[1], "c", publishers[2], "d")
    statements = [q["sql"] for q in queries if "SAVEPOINT" not in q["sql"]]  # the test's transaction
    assert len(statements) == 1 and statements[0].startswith("UPDATE"), statements
    assert publishers[2].stop_reason == LEASE_LOST
    assert [p.stop_reason for p in publishers[:2]] == [None, None]
    for s, text in zip(chats, ["a b", "c", None], strict=True):
        deltas = _buffered_deltas(s.sid)
        assert [d["data"]["text"] for d in deltas] == ["first"] + ([text] if text else [])
        assert [d["data"]["index"] for d in deltas] == list(range(len(deltas)))
        s.session.refresh_from_db()
        assert s.session.last_seq == (4 if text else 3)


def test_a_round_that_cannot_reach_redis_keeps_the_text_for_the_next(monkeypatch) -> None:
    """Text a round could not buffer goes out with the next round; a finishing turn's is
    dropped instead (its terminal event carries the whole reply)."""
    from conversations.turn.publisher import DeltaPublisher, publish_round
    from conversations.turn.watch import Watched
    from tests.live import free_port

    s = Layout()
    claim = _started_turn(s)
    assert claim is not None
    publisher = DeltaPublisher(Watched(claim))
    nobody = redis.Redis(port=free_port(), socket_connect_timeout=1)  # refuses connections
    reachable = stream_buffer.sync_redis

    publisher._busy = True
    publisher.add("kept")
    monkeypatch.setattr(stream_buffer, "sync_redis", lambda: nobody)
    again = publish_round([publisher])
    assert [p for p, _ in again] == [publisher] and again[0][1] > 0, "retried after a pause"
    assert publisher._pending == ["kept"] and publisher.deltas_sent == 0

    monkeypatch.setattr(stream_buffer, "sync_redis", reachable)
    _publish(publisher)
    deltas = _buffered_deltas(s.sid)
    assert [d["data"]["text"] for d in deltas] == ["kept"]

    publisher._busy = True
    publisher._finishing = True
    publisher.add("dropped")
    monkeypatch.setattr(stream_buffer, "sync_redis", lambda: nobody)
    assert publish_round([publisher]) == []
    assert not publisher._busy and publisher._pending == []
