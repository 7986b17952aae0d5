"""Benchmark: reading the active branch of a 10,000-event session, against a linear one.

Run: ``python -m bench.branch_read [--events 10000] [--reps 50]`` (``DATABASE_URL`` picks
PostgreSQL; unset = SQLite in var/). It writes two throw-away sessions of a tenant of its own
(``bench-branches-…``): one linear, one where every fifth turn was edited and every seventh
regenerated (the old versions kept, so its active branch is shorter than the session), times
the reads a turn and a client make, and deletes the tenant with everything it made.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from functools import partial

from bench.common import bench_environment, quiet_client_logs

bench_environment()

import django  # noqa: E402

django.setup()
quiet_client_logs()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from conversations.branches import branch_after, branch_leaf_through, branch_walk  # noqa: E402
from conversations.models import EventType, Session, SessionEvent  # noqa: E402
from conversations.selectors import HISTORY_TYPES, events_after, session_history_window  # noqa: E402
from somaagent.models import Tenant  # noqa: E402

TURN = (EventType.USER_MESSAGE, EventType.ASSISTANT_STARTED, EventType.ASSISTANT_FINAL)


def _session(tenant: Tenant, events: int, *, branched: bool) -> tuple[Session, int]:
    """A session of about ``events`` events; returns it and the length of its active branch."""
    session = Session.objects.create(tenant=tenant, title=f"bench {'branched' if branched else 'linear'}")
    rows: list[SessionEvent] = []
    leaf: uuid.UUID | None = None
    turn = 0

    def add(kind: str, parent: uuid.UUID | None) -> SessionEvent:
        row = SessionEvent(
            session=session,
            seq=len(rows) + 1,
            type=kind,
            role="user" if kind == EventType.USER_MESSAGE else "assistant",
            payload={"message": f"{kind} {len(rows)} " + "x" * 120},
            parent_id=parent,
        )
        rows.append(row)
        return row

    while len(rows) < events:
        turn += 1
        before = leaf
        chain = before
        for kind in TURN:
            chain = add(kind, chain).event_id
        if branched and turn % 5 == 0:  # an edit: the message again under the same parent
            chain = before
            for kind in TURN:
                chain = add(kind, chain).event_id
        if branched and turn % 7 == 0:  # another reply beside the last one
            message = rows[-3].event_id
            chain = message
            for kind in TURN[1:]:
                chain = add(kind, chain).event_id
        leaf = chain
    SessionEvent.objects.bulk_create(rows, batch_size=2000)
    Session.objects.filter(pk=session.pk).update(last_seq=len(rows), leaf_event_id=leaf, branched=branched)
    session.refresh_from_db()
    assert session.leaf_event_id is not None
    active = len(branch_after(session_id=session.pk, leaf=session.leaf_event_id, after=0))
    return session, active


def _time(fn: Callable[[], object], reps: int) -> tuple[float, float]:
    fn()  # warm
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.99 * len(samples)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=50)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    tenant = Tenant.objects.create(name=f"bench-branches-{uuid.uuid4().hex[:8]}")
    try:
        linear, linear_active = _session(tenant, args.events, branched=False)
        branched, branched_active = _session(tenant, args.events, branched=True)
        window = settings.SOMA.history_window_events
        print(f"database: {connection.vendor}; reps: {args.reps}")
        print()
        print("| read | linear: p50 / p99 ms | branched: p50 / p99 ms |")
        print("| --- | ---: | ---: |")
        print(
            f"| session: events / on the active branch | {linear.last_seq} / {linear_active} "
            f"| {branched.last_seq} / {branched_active} |"
        )

        def row(label: str, read: Callable[[Session], object]) -> None:
            cells = []
            for session in (linear, branched):
                p50, p99 = _time(partial(read, session), args.reps)
                cells.append(f"{p50:.2f} / {p99:.2f}")
            print(f"| {label} | {cells[0]} | {cells[1]} |")

        def leaf(s: Session) -> uuid.UUID:
            assert s.leaf_event_id is not None
            return s.leaf_event_id

        row(
            f"a turn's history window ({window} messages, walk from the leaf)",
            lambda s: session_history_window(session_id=s.pk, before=leaf(s), limit=window),
        )
        row(
            f"the same window by cursor, as before branches ({window} messages, no walk)",
            lambda s: list(
                SessionEvent.objects.filter(session_id=s.pk, type__in=HISTORY_TYPES).order_by("-seq")[:window]
            ),
        )
        row(
            "newest page of the active branch (100 events, `before=`: the web chat's open)",
            lambda s: branch_walk(session_id=s.pk, leaf=leaf(s), before=s.last_seq + 1, limit=101),
        )
        row(
            "first page of the active branch (100 events, `after=0`: walks the whole branch)",
            lambda s: branch_after(session_id=s.pk, leaf=leaf(s), after=0, limit=101),
        )
        row(
            "the whole active branch (export, Markdown)",
            lambda s: branch_after(session_id=s.pk, leaf=leaf(s), after=0),
        )
        row(
            "first page of `all=1` (100 events by cursor, no walk)",
            lambda s: events_after(session_id=s.pk, after=0, limit=101),
        )

        def first_event(s: Session) -> uuid.UUID:
            return SessionEvent.objects.filter(session=s, seq=1).values_list("event_id", flat=True).get()

        firsts = {s.pk: first_event(s) for s in (linear, branched)}

        def down(s: Session) -> object:
            return branch_leaf_through(session_id=s.pk, event_id=firsts[s.pk])

        row("`branch=<first event>`: down the newest children to a leaf", down)
    finally:
        Session.objects.filter(tenant=tenant).delete()
        tenant.delete()


if __name__ == "__main__":
    main()
