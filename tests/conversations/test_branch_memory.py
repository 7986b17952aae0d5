"""Memory follows the active branch (issue 18): what a message said on a branch that was edited
away is not recalled, in another chat or in its own; what the turn's own branch said is, even
beyond its history window."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest
from django.db import transaction

from conversations.models import EventType, Session, SessionEvent
from conversations.services.events import attach_under, event_append
from conversations.turn.prompt import prompt_window, turn_prompt
from tests.memory.helpers import make_tenant
from tests.memory.test_recall import claim_for, store_memory

pytestmark = pytest.mark.django_db


def _said(session: Session, text: str, under: SessionEvent | str | None = "leaf") -> SessionEvent:
    """A message and its reply; the message remembered as a turn's end remembers it."""
    extra: dict[str, Any] = (
        {} if under == "leaf" else {"attach": attach_under(getattr(under, "event_id", None))}
    )
    with transaction.atomic():
        message = event_append(
            session_id=session.pk, type=EventType.USER_MESSAGE, data={"message": text}, **extra
        )
        event_append(
            session_id=session.pk,
            type=EventType.ASSISTANT_FINAL,
            data={"message": "Noted.", "reply_to": str(message.event_id)},
        )
    store_memory(session.tenant, text, event_id=message.event_id, session_id=session.pk)
    return message


def _recalled(claim: Any) -> list[str]:
    return [r["snippet"] for r in turn_prompt(claim=claim, history=prompt_window(claim)).memories.references]


def test_memories_of_a_branch_edited_away_are_not_recalled(settings: Any) -> None:
    settings.SOMA = dataclasses.replace(settings.SOMA, history_window_events=2)
    tenant = make_tenant()
    chat = Session.objects.create(tenant=tenant)
    _said(chat, "My favourite colour is blue")
    _said(chat, "My favourite colour is green", under=None)  # the first message, edited
    _said(chat, "I also like long walks")

    elsewhere = claim_for(tenant, "What is my favourite colour?")
    assert _recalled(elsewhere) == ["My favourite colour is green"]

    # In the chat itself: the active branch's message, beyond the two-event window, is recalled.
    here = claim_for(tenant, "So what is my favourite colour?", session_id=chat.pk)
    assert _recalled(here) == ["My favourite colour is green"]

    # Switch back: a message under the first version makes its branch the active one again.
    first = SessionEvent.objects.get(session=chat, payload__message="My favourite colour is blue")
    _said(chat, "Back to this version", under=SessionEvent.objects.get(parent_id=first.event_id))
    assert _recalled(claim_for(tenant, "Which favourite colour did I say?")) == [
        "My favourite colour is blue"
    ]


def test_memories_of_chats_without_branches_and_of_no_chat_are_kept(settings: Any) -> None:
    tenant = make_tenant()
    chat = Session.objects.create(tenant=tenant)
    _said(chat, "My cat is called Tom")
    store_memory(tenant, "My cat Tom likes tuna", session_id=uuid.uuid4())  # a chat since deleted
    found = sorted(_recalled(claim_for(tenant, "What does my cat Tom like?")))
    assert found == ["My cat Tom likes tuna", "My cat is called Tom"]
