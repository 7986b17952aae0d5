"""Background summaries of the messages that left the history window, by the summary profile."""

from __future__ import annotations

import uuid
from dataclasses import replace

import httpx
import pytest
from django.db import transaction

from conversations.llm.openai_compat import OpenAICompatibleLlm
from conversations.llm.port import ChatChunk
from conversations.models import EventType, Session, SessionEvent, SessionSummary
from conversations.selectors import summary_on_branch
from conversations.services.events import attach_under, event_append
from conversations.services.summary import SUMMARY_TOPIC, session_summarise, summary_after_turn
from somaagent.models import ModelProfile, OutboxMessage
from tests.conftest import make_tenant_key
from tests.conversations.support import ConnectionProbePort

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_window(settings) -> None:
    settings.SOMA = replace(settings.SOMA, history_window_events=10, summary_batch_messages=50)


def session_with(messages: int) -> Session:
    tenant = make_tenant_key().tenant
    session = Session.objects.create(tenant=tenant)  # type: ignore[misc]
    with transaction.atomic():
        for i in range(messages):
            kind = EventType.USER_MESSAGE if i % 2 == 0 else EventType.ASSISTANT_FINAL
            event_append(session_id=session.pk, type=kind, data={"message": f"message m{i}"}, publish=False)
    return session


def profile(stub_url: str, role: str, directives: str = "") -> ModelProfile:
    key = uuid.uuid4().hex[:8]
    return ModelProfile.objects.create(
        role=role,
        deployment_mode="DEV",
        model=f"{role}-model",
        base_url=f"{stub_url}/d/key={key}{',' + directives if directives else ''}/v1",
    )


def test_nothing_is_queued_while_the_history_fits_the_window() -> None:
    session = session_with(18)
    with transaction.atomic():
        assert summary_after_turn(session_id=session.pk) is False
    assert not OutboxMessage.objects.filter(topic=SUMMARY_TOPIC).exists()


def test_a_summary_is_queued_once_enough_messages_left_the_window() -> None:
    session = session_with(30)
    with transaction.atomic():
        assert summary_after_turn(session_id=session.pk) is True
        assert summary_after_turn(session_id=session.pk) is False, "deduplicated"
    row = OutboxMessage.objects.get(topic=SUMMARY_TOPIC)
    session.refresh_from_db()
    assert row.payload == {"session_id": str(session.pk), "leaf": str(session.leaf_event_id)}


@pytest.mark.parametrize(
    ("before", "covered"),
    [(8, 0), (17, 0), (18, 0), (19, 0), (30, 0), (30, 12), (30, 13), (30, 14), (40, 16), (40, 30)],
)
def test_the_prompts_walk_decides_what_reading_the_branch_at_the_end_would(before: int, covered: int) -> None:
    """A turn decides when it reads its prompt whether its end queues a summary run: the
    same answer, for the same run, as reading the branch afresh once the turn has replied."""
    from conversations.models import Turn
    from conversations.turn.claim import turn_claim
    from conversations.turn.end import turn_ended
    from conversations.turn.prompt import prompt_window

    session = session_with(before)
    if covered:
        last = SessionEvent.objects.get(session=session, seq=covered)
        SessionSummary.objects.create(
            session=session,
            text="so far",
            covered_seq=covered,
            covered_event_id=last.event_id,
            messages=covered,
        )
    with transaction.atomic():
        message = event_append(
            session_id=session.pk, type=EventType.USER_MESSAGE, data={"message": "now"}, publish=False
        )
    turn = Turn.objects.create(tenant=session.tenant, session=session, user_event=message)
    claim = turn_claim(turn_id=turn.pk, owner="w1", ended=turn_ended, start=lambda c: "stub")
    assert claim is not None
    history = prompt_window(claim)
    assert len(history.events) == min(before, 10), "the prompt still gets the window alone"
    due = history.summary_due

    with transaction.atomic():
        event_append(
            session_id=session.pk, type=EventType.ASSISTANT_FINAL, data={"message": "r"}, publish=False
        )
        afresh = summary_after_turn(session_id=session.pk)
    assert (due is not None) == afresh
    if due is not None:
        row = OutboxMessage.objects.get(topic=SUMMARY_TOPIC)
        assert row.dedupe_key == f"summary:{session.pk}:{due.covered}:{due.boundary}"


def test_the_summary_profile_folds_old_messages_into_the_summary(llm_stub) -> None:
    summary_profile = profile(llm_stub.url, "summary")
    session = session_with(30)
    assert session_summarise(session_id=session.pk, port=OpenAICompatibleLlm()) == "summarised"
    summary = SessionSummary.objects.get(session=session)
    # 30 messages, the newest 10 stay in the window: m0..m19 are summarised.
    assert summary.messages == 20
    assert "message m0" in summary.text and "message m19" in summary.text
    assert "message m20" not in summary.text
    assert summary.model == summary_profile.model
    log = httpx.get(f"{llm_stub.url}/_log").json()
    sent = [
        entry
        for entry in log
        if entry["path"].startswith(summary_profile.base_url.split("/v1")[0][len(llm_stub.url) :])
    ]
    assert len(sent) == 1 and "running summary" in sent[0]["body"]["messages"][0]["content"]
    assert session_summarise(session_id=session.pk, port=OpenAICompatibleLlm()) == "nothing_to_do"


def test_the_next_run_builds_on_the_previous_summary(llm_stub) -> None:
    profile(llm_stub.url, "summary")
    session = session_with(30)
    session_summarise(session_id=session.pk, port=OpenAICompatibleLlm())
    first = SessionSummary.objects.get(session=session)
    with transaction.atomic():
        for i in range(30, 50):
            kind = EventType.USER_MESSAGE if i % 2 == 0 else EventType.ASSISTANT_FINAL
            event_append(session_id=session.pk, type=kind, data={"message": f"message m{i}"}, publish=False)
    assert session_summarise(session_id=session.pk, port=OpenAICompatibleLlm()) == "summarised"
    second = SessionSummary.objects.get(session=session)
    assert second.covered_seq > first.covered_seq and second.messages == 40
    assert "Summary so far" in second.text and "message m39" in second.text


def test_a_summary_is_of_one_branch_and_another_branch_starts_its_own(llm_stub) -> None:
    profile(llm_stub.url, "summary")
    session = session_with(30)  # m0..m29 on one branch
    assert session_summarise(session_id=session.pk, port=OpenAICompatibleLlm()) == "summarised"
    first = SessionSummary.objects.get(session=session)
    m3 = SessionEvent.objects.get(session=session, seq=4)
    with transaction.atomic():  # an edit after m3, and a long conversation on that branch
        event_append(
            session_id=session.pk,
            type=EventType.USER_MESSAGE,
            data={"message": "message fork"},
            publish=False,
            attach=attach_under(m3.event_id),
        )
        for i in range(29):
            kind = EventType.ASSISTANT_FINAL if i % 2 == 0 else EventType.USER_MESSAGE
            event_append(session_id=session.pk, type=kind, data={"message": f"message n{i}"}, publish=False)
    session.refresh_from_db()
    old_leaf = SessionEvent.objects.get(session=session, seq=30).event_id
    new_leaf = session.leaf_event_id
    assert new_leaf is not None
    on_old = summary_on_branch(session_id=session.pk, leaf=old_leaf, covered_seq=first.covered_seq)
    on_new = summary_on_branch(session_id=session.pk, leaf=new_leaf, covered_seq=first.covered_seq)
    assert on_old == first.covered_event_id and on_new == m3.event_id != first.covered_event_id

    assert session_summarise(session_id=session.pk, port=OpenAICompatibleLlm(), leaf=new_leaf) == "summarised"
    second = SessionSummary.objects.get(session=session)
    assert "message fork" in second.text and "message m10" not in second.text
    assert "Summary so far:\n(none yet)" in second.text, "started afresh, not on the other branch's"
    assert summary_on_branch(session_id=session.pk, leaf=new_leaf, covered_seq=second.covered_seq) == (
        second.covered_event_id
    )


def test_a_failing_summary_profile_falls_back_to_the_dialogue_model(llm_stub) -> None:
    profile(llm_stub.url, "summary", "status=401")
    dialogue = profile(llm_stub.url, "dialogue")
    session = session_with(30)
    assert session_summarise(session_id=session.pk, port=OpenAICompatibleLlm()) == "summarised"
    assert SessionSummary.objects.get(session=session).model == dialogue.model


def test_when_every_model_fails_nothing_is_stored(llm_stub) -> None:
    profile(llm_stub.url, "summary", "status=400")
    session = session_with(30)
    assert session_summarise(session_id=session.pk, port=OpenAICompatibleLlm()) == "model_failed"
    assert SessionSummary.objects.get(session=session).covered_seq == 0


def test_without_any_model_it_does_nothing() -> None:
    session = session_with(30)
    assert session_summarise(session_id=session.pk, port=OpenAICompatibleLlm()) == "no_model"


def test_an_unknown_session_is_ignored() -> None:
    assert session_summarise(session_id=uuid.uuid4(), port=OpenAICompatibleLlm()) == "no_session"


def test_a_run_takes_only_what_fits_its_token_share_and_queues_the_rest(llm_stub, settings) -> None:
    settings.SOMA = replace(settings.SOMA, history_window_events=10, context_tokens=200)
    profile(llm_stub.url, "summary", "reply=short")
    session = session_with(40)
    assert session_summarise(session_id=session.pk, port=OpenAICompatibleLlm()) == "summarised"
    summary = SessionSummary.objects.get(session=session)
    assert 0 < summary.messages < 30 and summary.text == "short"
    assert OutboxMessage.objects.filter(topic=SUMMARY_TOPIC, dedupe_key__endswith=":more").count() == 1
    assert session_summarise(session_id=session.pk, port=OpenAICompatibleLlm()) == "summarised"
    assert SessionSummary.objects.get(session=session).messages > summary.messages


class DeletingPort:
    """A model that takes so long that the session is deleted before it answers."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def open_stream(self, request):
        session = self.session

        class Stream:
            def __iter__(self):
                Session.objects.filter(pk=session.pk).delete()
                yield ChatChunk(text="too late")

            def close(self) -> None:
                pass

        return Stream()


def test_a_session_deleted_while_the_model_writes_is_left_alone(settings) -> None:
    settings.SOMA = replace(settings.SOMA, llm_base_url="http://unused.invalid/v1")
    session = session_with(30)
    assert session_summarise(session_id=session.pk, port=DeletingPort(session)) == "no_session"
    assert not SessionSummary.objects.filter(session_id=session.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_the_summary_model_call_holds_no_database_connection(settings) -> None:
    settings.SOMA = replace(settings.SOMA, llm_base_url="http://unused.invalid/v1")
    session = session_with(30)
    port = ConnectionProbePort("a short summary")
    assert session_summarise(session_id=session.pk, port=port) == "summarised"
    assert port.held == [False]
