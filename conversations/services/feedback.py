"""Feedback on replies: thumbs up or down, an optional comment and tags (issue 18)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from conversations.models import EventType, Feedback, Session, SessionEvent
from conversations.selectors import parse_uuid
from somaagent.errors import NotFound, ValidationFailed
from somaagent.identity.principal import Principal

MAX_COMMENT_CHARS = 2000
MAX_TAGS = 10
MAX_TAG_CHARS = 40


def feedback_reply(*, session: Session, event_id: object) -> SessionEvent:
    """The session's reply ``event_id`` (an ``assistant.final``); NotFound otherwise."""
    event = SessionEvent.objects.filter(session=session, event_id=parse_uuid(event_id, what="event")).first()
    if event is None or event.type != EventType.ASSISTANT_FINAL:
        raise NotFound("No reply with that id in this session.")
    return event


def feedback_tags(raw: Any) -> list[str]:
    """Tags as stored: at most MAX_TAGS non-blank strings, trimmed, once each; ValidationFailed else."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_TAGS:
        raise ValidationFailed(
            f"tags must be a list of at most {MAX_TAGS} strings.", details={"tags": "invalid"}
        )
    tags: list[str] = []
    for tag in raw:
        if not isinstance(tag, str) or not tag.strip() or len(tag) > MAX_TAG_CHARS or "\x00" in tag:
            raise ValidationFailed(
                f"each tag must be 1 to {MAX_TAG_CHARS} characters.", details={"tags": "invalid"}
            )
        if tag.strip() not in tags:
            tags.append(tag.strip())
    return tags


def feedback_give(
    *, principal: Principal, session: Session, event: SessionEvent, rating: str, comment: str, tags: Any
) -> Feedback:
    """Store the author's feedback on the reply, replacing what they gave before."""
    if rating not in Feedback.Rating.values:
        raise ValidationFailed('rating must be "up" or "down".', details={"rating": "invalid"})
    if len(comment) > MAX_COMMENT_CHARS:
        raise ValidationFailed(
            f"comment must be at most {MAX_COMMENT_CHARS} characters.", details={"comment": "too_long"}
        )
    values = {
        "tenant_id": session.tenant_id,
        "session": session,
        "rating": rating,
        "comment": comment,
        "tags": feedback_tags(tags),
        "model": str(event.payload.get("model") or "")[:200],
        "persona_id": session.persona_id,
        "updated_at": timezone.now(),
    }
    # update_or_create locks the row, and a twin that inserted first is read and updated.
    feedback, _created = Feedback.objects.update_or_create(
        event=event, author=principal.label, defaults=values
    )
    return feedback


def feedback_of(*, principal: Principal, event: SessionEvent) -> Feedback | None:
    return Feedback.objects.filter(event=event, author=principal.label).first()


def feedback_withdraw(*, principal: Principal, event: SessionEvent) -> bool:
    deleted, _ = Feedback.objects.filter(event=event, author=principal.label).delete()
    return bool(deleted)


MAX_LISTED = 1000


def feedback_in_session(*, principal: Principal, session: Session) -> list[Feedback]:
    """The caller's feedback on the session's replies, newest first (at most ``MAX_LISTED``)."""
    rows = Feedback.objects.filter(session=session, author=principal.label).select_related("event")
    return list(rows.order_by("-updated_at")[:MAX_LISTED])
