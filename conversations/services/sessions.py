"""Session writes other than messages: rename, delete, cancel."""

from __future__ import annotations

import uuid

from django.db import transaction

from conversations import stream_buffer
from conversations.models import Session
from conversations.services.turn_end import turn_ended
from conversations.services.turns import turn_request_cancel
from somaagent.errors import ValidationFailed

# Hooks run inside the deleting transaction: (session) -> None (memory forgets it, …).
DELETE_HOOKS: list = []


def session_rename(*, session: Session, title: str) -> Session:
    title = title.strip()
    if not title or len(title) > 200:
        raise ValidationFailed("title must be 1 to 200 characters.", details={"title": "invalid"})
    session.title = title
    session.title_automatic = False  # the model's proposal never overwrites a chosen title
    session.save(update_fields=["title", "title_automatic"])
    return session


def session_delete(*, session: Session) -> None:
    """Stop its turns and delete the session with its events; the stream buffer goes too."""
    session_id: uuid.UUID = session.pk
    turn_request_cancel(session=session, ended=turn_ended)
    with transaction.atomic():
        for hook in DELETE_HOOKS:
            hook(session=session)
        session.delete()
    stream_buffer.delete(str(session_id))


def session_cancel(*, session: Session) -> list[uuid.UUID]:
    return turn_request_cancel(session=session, ended=turn_ended)
