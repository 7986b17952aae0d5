"""Session writes other than messages: rename, delete, cancel."""

from __future__ import annotations

import uuid

from django.db import transaction

from conversations import stream_buffer
from conversations.models import Session, Turn
from conversations.services.approval_answer import approvals_close
from conversations.turn.end import turn_ended
from conversations.turn.finish import turn_request_cancel
from documents.services.collections import chat_files_delete
from memory.services.writes import memory_forget_session
from somaagent.budgets.services import turn_usage_record
from somaagent.errors import ValidationFailed


def session_rename(*, session: Session, title: str) -> Session:
    title = title.strip()
    if not title or len(title) > 200:
        raise ValidationFailed("title must be 1 to 200 characters.", details={"title": "invalid"})
    session.title = title
    session.title_automatic = False  # the model's proposal never overwrites a chosen title
    session.save(update_fields=["title", "title_automatic"])
    return session


def session_delete(*, session: Session) -> None:
    """Stop its turns and delete the session with its events and its own files (documents);
    the stream buffer goes too."""
    session_id: uuid.UUID = session.pk
    turn_request_cancel(session=session, ended=turn_ended)
    with transaction.atomic():
        _settle_running_turns(session)
        memory_forget_session(session=session)  # through the memory write outbox
        chat_files_delete(session_id=session_id)
        session.delete()
    stream_buffer.delete(str(session_id))


def _settle_running_turns(session: Session) -> None:
    """A turn still running when its session goes settles its budget like a cancel.

    Its row is locked first, as the worker's own end of the turn does (``turn_finish``
    locks the turn, then writes its usage): taken in the other order, the two
    transactions wait on each other (our usage row, their turn row) and PostgreSQL
    kills one as a deadlock. Locked, a turn the worker has just ended is not active any
    more and is skipped; one it has not ended stays ours, and its worker loses the lease.
    """
    running = Turn.objects.select_for_update().filter(session=session, status__in=Turn.ACTIVE_STATUSES)
    for turn in list(running):
        turn_usage_record(
            turn_id=turn.pk,
            tenant_id=turn.tenant_id,
            persona_id=session.persona_id,
            session_id=session.pk,
            model=turn.model,
            usage=turn.usage,
            event_type="assistant.cancelled",
        )


def session_cancel(*, session: Session) -> list[uuid.UUID]:
    """Stop the session's replies; a reply parked on approvals ends at once, its approvals closed."""
    cancelled = turn_request_cancel(session=session, ended=turn_ended)
    approvals_close(turn_ids=cancelled)
    return cancelled
