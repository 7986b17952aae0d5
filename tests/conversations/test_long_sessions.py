"""Long sessions: the prompt sent to the model stays bounded, older turns live on in a summary."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conversations.models import EventType, Session, SessionEvent, SessionSummary
from conversations.services.sessions import session_delete
from conversations.turn.context_window import SUMMARY_PREFIX, prompt_tokens
from somaagent.models import UISetting
from tests.live import LiveSystem, read_stream, wait_until

pytestmark = pytest.mark.integration

BUDGET = 1000
WINDOW = 40  # SOMA_HISTORY_WINDOW_EVENTS's default
SUMMARY_REPLY = "Earlier the user listed many numbered items"


@pytest.fixture
def small_budget(live_db) -> Iterator[None]:
    """A small context budget (the ``context`` UI setting), so trimming shows with modest messages."""
    UISetting.objects.update_or_create(key="context", defaults={"document": {"context_tokens": BUDGET}})
    yield
    UISetting.objects.filter(key="context").delete()


def session_with_history(tenant: Any, events: int) -> Session:
    """A session with ``events`` stored messages, written in bulk (a week of chat, instantly)."""
    session = Session.objects.create(tenant=tenant, title=f"{events} events")
    rows: list[SessionEvent] = []
    for seq in range(1, events + 1):
        user = seq % 2 == 1
        text = f"[[reply={SUMMARY_REPLY}]] item {seq} " if user else f"noted item {seq - 1} "
        rows.append(
            SessionEvent(
                session=session,
                seq=seq,
                type=EventType.USER_MESSAGE if user else EventType.ASSISTANT_FINAL,
                role="user" if user else "assistant",
                payload={"message": text + "x" * 150},
                parent_id=rows[-1].event_id if rows else None,  # one branch
            )
        )
    SessionEvent.objects.bulk_create(rows, batch_size=2000)
    Session.objects.filter(pk=session.pk).update(
        last_seq=events, leaf_event_id=rows[-1].event_id, leaf_parent_id=rows[-1].parent_id
    )
    session.refresh_from_db()
    return session


def prompt_for(system: LiveSystem, stub_url: str, key: str, session: Session) -> list[dict[str, Any]]:
    marker = uuid.uuid4().hex
    with system.client(key) as c:
        r = c.post(
            "/v1/session/message", json={"message": f"question {marker}", "session_id": str(session.pk)}
        )
    assert r.status_code == 202, r.text
    events = read_stream(
        system,
        key,
        str(session.pk),
        after=session.last_seq,
        until=lambda e: e["type"] == "assistant.final" and marker in e["data"]["message"],
    )
    assert events[-1]["type"] == "assistant.final", events[-1]
    bodies = [e["body"] for e in httpx.get(f"{stub_url}/_log").json()]
    return next(b["messages"] for b in bodies if b["messages"][-1]["content"] == f"question {marker}")


def test_the_prompt_stays_bounded_whatever_the_session_length(
    live_system, small_budget, llm_stub, tenant_key
) -> None:
    short = session_with_history(tenant_key.tenant, 10)
    long = session_with_history(tenant_key.tenant, 10_000)
    try:
        check_bounded_prompts(live_system, llm_stub.url, tenant_key.key, short, long)
    finally:
        session_delete(session=long)  # ends the summary backlog's chain of tasks


def check_bounded_prompts(system: LiveSystem, stub_url: str, key: str, short: Session, long: Session) -> None:
    short_prompt = prompt_for(system, stub_url, key, short)
    long_prompt = prompt_for(system, stub_url, key, long)

    # The short session fits whole; the long one is cut to the newest messages that fit.
    assert len([m for m in short_prompt if m["role"] != "system"]) == 10 + 1
    assert prompt_tokens(long_prompt) <= BUDGET
    history = [m for m in long_prompt[:-1] if m["role"] != "system"]
    assert 10 <= len(history) < WINDOW
    assert history[-1]["content"].startswith("noted item 9999 "), "the newest history is kept"
    assert prompt_tokens(long_prompt) <= prompt_tokens(short_prompt) + BUDGET

    # Older turns are summarised in the background by the summary (here: dialogue) model…
    summary = wait_until(
        lambda: SessionSummary.objects.filter(session=long, covered_seq__gt=0).first(),
        timeout=60,
        what="the background summary of the long session",
    )
    assert summary.text == SUMMARY_REPLY and summary.messages > 0
    assert not SessionSummary.objects.filter(session=short, covered_seq__gt=0).exists()

    # …and the next turn carries the summary, still within the budget.
    long.refresh_from_db()
    next_prompt = prompt_for(system, stub_url, key, long)
    leading = [m for m in next_prompt[1:] if m["role"] == "system"]
    summaries = [m["content"] for m in leading if m["content"].startswith(SUMMARY_PREFIX)]
    assert summaries == [SUMMARY_PREFIX + SUMMARY_REPLY]
    assert prompt_tokens(next_prompt) <= BUDGET
