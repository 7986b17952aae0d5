"""What one turn costs the worker, measured in-process: CPU, SQL statements, transactions.

    python -m bench.turn_cost [--turns N]
    python -m bench.turn_cost --history 10000     # every turn in one chat of 10,000 events


Runs N turns one after another in this process (``turn_run``, the body of the
``conversation.run_turn`` task) against the stub OpenAI-compatible model over
real HTTP with a zero-latency reply of 5 tokens, then delivers each turn's
memory writes (``memory_deliver``, the ``memory.deliver`` task). Reports per
turn: CPU time of this process (every thread: the turn's, the delta writers',
the watcher's), SQL statements and transactions on every thread, for the turn
and for its memory delivery; and the bare cost of a Celery no-op task body for
scale. With ``--history N`` the turns are the next messages of one chat that
already holds N events (user messages and replies), so that a short chat and a
long one can be compared (issue 13: a turn of a 10,000-event chat should cost at
most 1.2x one of a 10-event chat). Needs DATABASE_URL/REDIS_URL like the app
(default: the embedded ones).
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import os
import pstats
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

from bench.common import bench_environment, percentile, quiet_client_logs, run_header


@dataclasses.dataclass
class Counted:
    statements: int = 0
    transactions: int = 0
    log: list[str] | None = None  # the statements themselves, when asked for (--sql)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        # A statement outside any transaction block is a transaction of its own (autocommit).
        alone = not context["connection"].in_atomic_block and context["connection"].get_autocommit()
        with self.lock:
            self.statements += 1
            self.transactions += int(alone)
            if self.log is not None:
                mark = " (autocommit)" if alone else ""
                self.log.append(f"[{threading.current_thread().name}] {sql[:150]}{mark}")
        return execute(sql, params, many, context)


def _setup() -> None:
    bench_environment()
    os.environ["SOMA_REDIS_PREFIX"] = f"bench{uuid.uuid4().hex[:8]}:"
    import django

    django.setup()
    quiet_client_logs()
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], check=True)


def _count_everything() -> Counted:
    """Count statements on every connection of every thread from now on (and commits)."""
    from django.db import connections
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.signals import connection_created

    counted = Counted()

    def install(sender: Any, connection: Any, **_: Any) -> None:
        if counted not in connection.execute_wrappers:
            connection.execute_wrappers.append(counted)

    for conn in connections.all(initialized_only=True):
        conn.close()
    connection_created.connect(install, weak=False)
    commit = BaseDatabaseWrapper.commit

    def counting_commit(self: Any) -> None:
        with counted.lock:
            counted.transactions += 1
            if counted.log is not None:
                counted.log.append(f"[{threading.current_thread().name}] COMMIT")
        commit(self)

    BaseDatabaseWrapper.commit = counting_commit  # type: ignore[method-assign]
    return counted


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--profile", action="store_true", help="cProfile the turns, print the heaviest")
    parser.add_argument("--sql", action="store_true", help="print the statements of the last turn")
    parser.add_argument(
        "--history", type=int, default=0, help="run every turn in one chat that already has N events"
    )
    args = parser.parse_args()
    _setup()
    from django.conf import settings
    from django.db import transaction

    from conversations.models import EventType, Session, SessionEvent, Turn
    from conversations.services.events import event_append
    from conversations.turn.runner import turn_run
    from memory.models import MemoryWrite
    from memory.services.delivery import claim_head, memory_deliver
    from somaagent.models import Tenant
    from tests.live import StubServer

    stub = StubServer("tests.stubs.llm_server")
    settings.SOMA = dataclasses.replace(settings.SOMA, llm_base_url=f"{stub.url}/v1", llm_model="stub")
    tenant = Tenant.objects.create(name=f"bench-cost-{uuid.uuid4().hex[:8]}")

    long_chat = Session.objects.create(tenant=tenant) if args.history else None
    if long_chat is not None:
        for start in range(0, args.history, 500):
            with transaction.atomic():
                for i in range(start, min(args.history, start + 500)):
                    reply = i % 2 == 1
                    event_append(
                        session_id=long_chat.pk,
                        type=EventType.ASSISTANT_FINAL if reply else EventType.USER_MESSAGE,
                        data={"message": f"{'answer' if reply else 'question'} {i}: " + "words " * 30},
                        publish=False,
                    )

    def queued() -> Turn:
        if long_chat is not None:  # the chat's next message, as an accept appends it
            with transaction.atomic():
                event = event_append(
                    session_id=long_chat.pk,
                    type=EventType.USER_MESSAGE,
                    data={"message": "hello there [[tokens=5]]"},
                    publish=False,
                )
            return Turn.objects.create(tenant=tenant, session=long_chat, user_event=event)
        session = Session.objects.create(tenant=tenant, last_seq=1)
        event = SessionEvent.objects.create(
            session=session,
            seq=1,
            type=EventType.USER_MESSAGE,
            role="user",
            payload={"message": "hello there [[tokens=5]]"},
        )
        return Turn.objects.create(tenant=tenant, session=session, user_event=event)

    try:
        for _ in range(20):  # warm-up: pools, caches, the policy bundle
            turn_run(turn_id=queued().pk, owner="warm")
        # In one chat each message is appended once the turn before it has ended.
        turns = [] if long_chat is not None else [queued() for _ in range(args.turns)]
        counted = _count_everything()
        cpu: list[float] = []
        profiler = cProfile.Profile() if args.profile else None
        for i in range(args.turns):
            if long_chat is not None:
                before = counted.statements, counted.transactions
                turns.append(queued())
                counted.statements, counted.transactions = before  # the accept's, not the turn's
            turn = turns[i]
            if args.sql:
                counted.log = []
            started = time.process_time()
            if profiler is not None:
                profiler.enable()
            turn_run(turn_id=turn.pk, owner=f"w-{turn.pk}")
            if profiler is not None:
                profiler.disable()
            cpu.append((time.process_time() - started) * 1000)
        if profiler is not None:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(60)
        turn_statements, turn_transactions = counted.statements, counted.transactions
        if counted.log is not None:
            print("\n".join(counted.log), end="\n\n")
            counted.log = None
        MemoryWrite.objects.filter(session_id__in=[t.session_id for t in turns]).update(
            lease_owner="", lease_until=None
        )
        counted.statements = counted.transactions = 0
        memory_cpu: list[float] = []
        for turn in turns:
            claim = claim_head(tenant_id=tenant.pk, session_id=turn.session_id)
            if claim is None:
                continue
            started = time.process_time()
            memory_deliver(write_id=claim.write_id, token=claim.token)
            memory_cpu.append((time.process_time() - started) * 1000)
        memory_statements, memory_transactions = counted.statements, counted.transactions
        done = Turn.objects.filter(pk__in=[t.pk for t in turns], status="completed").count()
    finally:
        stub.stop()
    n = len(turns)
    print(run_header("bench.turn_cost"))
    print(f"- DATABASE_URL: {os.environ.get('DATABASE_URL') or '(unset: embedded default)'}")
    print()
    chat = f", in one chat of {args.history:,} events" if args.history else ""
    print(f"| per turn (zero-latency stub model, 5 tokens{chat}) | p50 | mean | statements | transactions |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(
        f"| the turn (`turn_run`), CPU ms, {done}/{n} completed | {percentile(cpu, 50):.1f} | "
        f"{sum(cpu) / n:.1f} | {turn_statements / n:.1f} | {turn_transactions / n:.1f} |"
    )
    if memory_cpu:
        print(
            "| its memory delivery (`memory_deliver`, 2 writes), CPU ms | "
            f"{percentile(memory_cpu, 50):.1f} | "
            f"{sum(memory_cpu) / len(memory_cpu):.1f} | {memory_statements / len(memory_cpu):.1f} | "
            f"{memory_transactions / len(memory_cpu):.1f} |"
        )
    print()
    print(
        "- statements and transactions counted on every thread (the delta writers' too; a "
        "statement in autocommit counts as a transaction); "
        "CPU is this process's, every thread"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
