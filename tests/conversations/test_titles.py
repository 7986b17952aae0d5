"""A chat's title: its first words at once, then a short title the model proposes (never over a rename)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from django.db import transaction

from conversations.llm.openai_compat import OpenAICompatibleLlm
from conversations.llm.port import ChatChunk
from conversations.models import EventType, Session
from conversations.services.events import event_append
from conversations.services.sessions import session_rename
from conversations.services.titles import (
    TITLE_CHARS,
    TITLE_TOPIC,
    session_title_propose,
    title_clean,
    title_from_message,
)
from somaagent.models import ModelProfile, OutboxMessage
from tests.conftest import make_tenant_key
from tests.conversations.support import ConnectionProbePort, own_system, send, stub_env
from tests.live import LiveSystem, read_stream, wait_until

LONG = (
    "Could you help me plan a three week trip through Portugal and Spain next spring, "
    "with trains only and a budget?"
)


@pytest.mark.parametrize(
    ("message", "title"),
    [
        ("Hello!", "Hello!"),
        ("  \n\n  What is   the\tweather?  \nsecond line", "What is the weather?"),
        (LONG, "Could you help me plan a three week trip through Portugal…"),
        ("x" * 100, "x" * (TITLE_CHARS - 1) + "…"),
        ("a " + "y" * 90, "a " + "y" * (TITLE_CHARS - 3) + "…"),  # a boundary too early: cut mid-word
        ("", ""),
    ],
)
def test_the_first_message_is_shortened_sensibly(message: str, title: str) -> None:
    assert title_from_message(message) == title
    assert len(title_from_message(message)) <= TITLE_CHARS


@pytest.mark.parametrize(
    ("answer", "title"),
    [
        ('Title: "Planning a trip."', "Planning a trip"),
        ("**Rail trip in Iberia**\nSecond line", "Rail trip in Iberia"),
        ("   ", ""),
    ],
)
def test_the_models_answer_is_cleaned(answer: str, title: str) -> None:
    assert title_clean(answer) == title


@pytest.mark.django_db
def test_a_new_session_is_titled_by_its_first_words(api) -> None:
    response = api.call("post", "/v1/session/message", json_body={"message": LONG})
    assert response.status_code == 202
    session = Session.objects.get(pk=json.loads(response.content)["session_id"])
    assert session.title == title_from_message(LONG) and session.title_automatic


def session_with_reply(first: str, reply: str = "Sure, here is a plan.") -> Session:
    tenant = make_tenant_key().tenant
    session = Session.objects.create(  # type: ignore[misc]
        tenant=tenant, title=title_from_message(first), title_automatic=True
    )
    with transaction.atomic():
        event_append(
            session_id=session.pk, type=EventType.USER_MESSAGE, data={"message": first}, publish=False
        )
        event_append(
            session_id=session.pk, type=EventType.ASSISTANT_FINAL, data={"message": reply}, publish=False
        )
    return session


def summary_profile(stub_url: str) -> ModelProfile:
    return ModelProfile.objects.create(
        role="summary",
        deployment_mode="DEV",
        model="title-model",
        base_url=f"{stub_url}/d/key={uuid.uuid4().hex[:8]}/v1",
    )


@pytest.mark.django_db
def test_the_model_names_the_chat_once(llm_stub) -> None:
    summary_profile(llm_stub.url)
    session = session_with_reply("Plan my trip [[reply=Title: Rail trip through Iberia.]]")
    assert session_title_propose(session_id=session.pk, port=OpenAICompatibleLlm()) == "titled"
    session.refresh_from_db()
    assert session.title == "Rail trip through Iberia" and not session.title_automatic
    assert session_title_propose(session_id=session.pk, port=OpenAICompatibleLlm()) == "kept"


@pytest.mark.django_db
def test_a_renamed_chat_keeps_its_name(llm_stub) -> None:
    summary_profile(llm_stub.url)
    session = session_with_reply("Plan my trip [[reply=Model title]]")
    session_rename(session=session, title="My trip")
    assert session_title_propose(session_id=session.pk, port=OpenAICompatibleLlm()) == "kept"
    assert Session.objects.get(pk=session.pk).title == "My trip"


class RenamingPort:
    """Answers a title after the user renamed the chat while the model was writing."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def open_stream(self, request: Any) -> Any:
        session = self.session

        class Stream:
            def __iter__(self):
                session_rename(session=Session.objects.get(pk=session.pk), title="Mine")
                yield ChatChunk(text="Model title")

            def close(self) -> None:
                pass

        return Stream()


@pytest.mark.django_db
def test_a_rename_while_the_model_writes_wins(settings) -> None:
    settings.SOMA = replace(settings.SOMA, llm_base_url="http://unused.invalid/v1")
    session = session_with_reply("Plan my trip")
    assert session_title_propose(session_id=session.pk, port=RenamingPort(session)) == "kept"
    assert Session.objects.get(pk=session.pk).title == "Mine"


@pytest.mark.django_db
def test_without_a_model_or_with_a_failing_one_the_first_words_stay(settings, llm_stub) -> None:
    settings.SOMA = replace(settings.SOMA, llm_base_url="")
    session = session_with_reply(LONG)
    assert session_title_propose(session_id=session.pk, port=OpenAICompatibleLlm()) == "no_model"
    assert Session.objects.get(pk=session.pk).title == title_from_message(LONG)
    summary_profile(llm_stub.url)
    failing = session_with_reply("hi [[status=401]]")
    assert session_title_propose(session_id=failing.pk, port=OpenAICompatibleLlm()) == "model_failed"
    assert Session.objects.get(pk=failing.pk).title == "hi [[status=401]]"


@pytest.mark.integration
def test_with_title_proposals_off_the_first_words_stay(live_system, tenant_key) -> None:
    """The suite's shared system runs with SOMA_TITLE_FROM_MODEL=0, as an operator may."""
    accepted = send(live_system, tenant_key.key, "Keep my words [[reply=Model name]]")
    read_stream(live_system, tenant_key.key, accepted["session_id"])
    assert not OutboxMessage.objects.filter(dedupe_key=f"title:{accepted['session_id']}").exists()
    assert Session.objects.get(pk=accepted["session_id"]).title == "Keep my words [[reply=Model name]]"


@pytest.fixture(scope="module")
def titling_system(llm_stub, django_db_setup, django_db_blocker) -> Iterator[LiveSystem]:
    """A live system of its own with the model's title proposals on (the suite turns them off)."""
    with django_db_blocker.unblock(), own_system(stub_env(llm_stub.url, SOMA_TITLE_FROM_MODEL="1")) as system:
        yield system


@pytest.mark.integration
def test_after_the_first_reply_the_worker_names_the_chat_in_the_background(
    titling_system, tenant_key
) -> None:
    system = titling_system
    first = send(system, tenant_key.key, "Help me plan a rail trip [[reply=Iberian rail trip]]")
    sid = first["session_id"]
    read_stream(system, tenant_key.key, sid)
    row = OutboxMessage.objects.get(dedupe_key=f"title:{sid}")
    assert row.topic == TITLE_TOPIC and row.payload == {"session_id": sid}
    wait_until(
        lambda: Session.objects.get(pk=sid).title == "Iberian rail trip", timeout=20, what="the model's title"
    )
    second = send(system, tenant_key.key, "And back? [[reply=Fine]]", session_id=sid)
    read_stream(system, tenant_key.key, sid, after=int(second["stream"]["sse"].rsplit("=", 1)[1]))
    assert OutboxMessage.objects.filter(topic=TITLE_TOPIC, payload__session_id=sid).count() == 1


@pytest.mark.integration
def test_a_chat_renamed_before_its_first_reply_keeps_the_name(titling_system, tenant_key) -> None:
    system = titling_system
    accepted = send(system, tenant_key.key, "Slow one [[first_delay=1.5]] [[reply=Model name]]")
    sid = accepted["session_id"]
    with system.client(tenant_key.key) as c:
        assert c.patch(f"/v1/sessions/{sid}", json={"title": "Named by me"}).status_code == 200
    read_stream(system, tenant_key.key, sid)
    assert not OutboxMessage.objects.filter(dedupe_key=f"title:{sid}").exists()
    assert Session.objects.get(pk=sid).title == "Named by me"


@pytest.mark.django_db(transaction=True)
def test_the_title_model_call_holds_no_database_connection(settings) -> None:
    """A title task waits seconds on a real model; holding its pooled connection meanwhile
    starved the worker's turns (100 at once: half finished a whole reply later)."""
    settings.SOMA = replace(settings.SOMA, llm_base_url="http://unused.invalid/v1")
    session = session_with_reply("Plan my trip")
    port = ConnectionProbePort("Rail trip")
    assert session_title_propose(session_id=session.pk, port=port) == "titled"
    assert port.held == [False]
