"""Turns that wait for approval are parked: no worker thread holds them, a killed worker loses nothing.

A worker with 4 threads parks 30 turns that wait for approval — 100 in the slow
suite (`make test-slow`), as the issue asks — (if a waiting turn held its thread,
at most 4 could ever ask), answers another session at
once, is SIGKILLed while they wait, and a new worker finishes every one of
them after the answers, each ending exactly once.
"""

from __future__ import annotations

import pytest

from conversations.models import SessionEvent, ToolApproval, Turn
from tests.conftest import make_tenant_key
from tests.conversations.approval_support import answer, needs_approval
from tests.conversations.support import own_system, send, stub_env
from tests.live import TERMINAL, read_stream, stub_llm, wait_until

pytestmark = pytest.mark.integration

THREADS = 4


@pytest.mark.parametrize("waiting", [30, pytest.param(100, marks=pytest.mark.slow)])
def test_many_waiting_turns_hold_no_thread_and_survive_a_killed_worker(live_db: None, waiting: int) -> None:
    with (
        stub_llm() as stub,
        own_system(stub_env(stub.url), worker_env={"SOMA_WORKER_CONCURRENCY": str(THREADS)}) as system,
    ):
        tk = make_tenant_key()
        needs_approval(tk.tenant, "current_time")
        accepted = [
            send(system, tk.key, f"n{i} [[tool=current_time:{{}}]] [[echo_tools]]") for i in range(waiting)
        ]
        turn_ids = [a["turn_id"] for a in accepted]
        parked = Turn.objects.filter(pk__in=turn_ids, awaiting_approval=True)
        wait_until(lambda: parked.count() == waiting, timeout=120, interval=0.5, what="every turn to park")
        assert (
            parked.filter(status="running", lease_owner="", lease_expires_at__isnull=True).count() == waiting
        )
        assert ToolApproval.objects.filter(turn_id__in=turn_ids, status="pending").count() == waiting

        quick = send(system, tk.key, "[[reply=not waiting]]")
        events = read_stream(system, tk.key, quick["session_id"], timeout=30)
        assert events[-1]["type"] == "assistant.final" and events[-1]["data"]["message"] == "not waiting"

        system.kill_workers()  # SIGKILL while every turn waits: none of them was on it
        system.ensure_worker()
        for a in accepted:
            approval = ToolApproval.objects.get(turn_id=a["turn_id"])
            decision = "approve" if int(a["turn_id"][-1], 16) % 2 else "deny"
            response = answer(system, tk.key, a["session_id"], approval.call_id, decision=decision)
            assert response.status_code == 200, response.text
        done = Turn.objects.filter(pk__in=turn_ids, status="completed")
        wait_until(lambda: done.count() == waiting, timeout=180, interval=0.5, what="every reply to end")

    for a in accepted:
        types = list(
            SessionEvent.objects.filter(session_id=a["session_id"])
            .order_by("seq")
            .values_list("type", flat=True)
        )
        assert sum(1 for t in types if t in TERMINAL) == 1 and types[-1] == "assistant.final", types
        assert types.count("assistant.started") == 1 and types.count("tool.result") == 1, types
    assert set(Turn.objects.filter(pk__in=turn_ids).values_list("attempts", flat=True)) == {1}
