"""Exporting chats (issue 18): lossless JSON, which an import can read back, and readable Markdown.

One chat's JSON holds its session, every persisted event in order (the stream's
envelope, ``data`` whole, with ``parent_id``: every branch, which an import
rebuilds), its attachments' metadata (not their bytes) and the
exporter's feedback on its replies. All of someone's chats are one JSON document
streamed chat by chat, so its size does not bound the server's memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.utils import timezone

from conversations.branches import branch_after
from conversations.envelope import envelope_of
from conversations.models import Attachment, EventType, Feedback, Session, SessionEvent
from conversations.selectors import events_after, session_list
from somaagent.identity.principal import Principal

FORMAT = "somaagent.chat.v1"
EVENT_PAGE = 500
CHAT_PAGE = 20


def _events(session: Session) -> Iterator[SessionEvent]:
    after = 0
    while True:
        page = events_after(session_id=session.pk, after=after, limit=EVENT_PAGE)
        yield from page
        if len(page) < EVENT_PAGE:
            return
        after = page[-1].seq


def chat_document(*, principal: Principal, session: Session) -> dict[str, Any]:
    """One chat, lossless: what ``export?format=json`` answers."""
    attachments = Attachment.objects.filter(session=session).order_by("created_at")
    feedback = Feedback.objects.filter(session=session, author=principal.label).select_related("event")
    return {
        "format": FORMAT,
        "exported_at": timezone.now().isoformat(),
        "session": {
            "id": str(session.pk),
            "title": session.title,
            "persona_id": str(session.persona_id) if session.persona_id else None,
            "metadata": session.metadata,
            "created_at": session.created_at.isoformat(),
        },
        "events": [envelope_of(e) for e in _events(session)],
        "attachments": [
            {
                "id": str(a.pk),
                "filename": a.filename,
                "mime": a.mime,
                "size": a.size,
                "sha256": a.sha256,
                "status": a.status,
            }
            for a in attachments
        ],
        "feedback": [
            {"event_id": str(f.event.event_id), "rating": f.rating, "comment": f.comment, "tags": f.tags}
            for f in feedback.order_by("created_at")
        ],
    }


def _active_branch(session: Session) -> Iterator[SessionEvent]:
    """The events of the session's active branch (all of them in a session never linked)."""
    if session.leaf_event_id is None:
        yield from _events(session)
        return
    yield from branch_after(session_id=session.pk, leaf=session.leaf_event_id, after=0)


def chat_markdown(*, session: Session) -> str:
    """One chat as Markdown: the title, then each message and reply of its active branch (tool
    calls and deltas left out; the JSON export has every branch)."""
    lines = [f"# {session.title or 'Untitled chat'}", ""]
    for event in _active_branch(session):
        data = event.payload
        when = event.occurred_at.strftime("%Y-%m-%d %H:%M UTC")
        if event.type == EventType.USER_MESSAGE:
            lines += [f"**You** · {when}", "", str(data.get("message", "")), ""]
        elif event.type == EventType.ASSISTANT_FINAL:
            model = f" ({data['model']})" if data.get("model") else ""
            lines += [f"**SomaAgent**{model} · {when}", "", str(data.get("message", "")), ""]
        elif event.type == EventType.ASSISTANT_ERROR:
            lines += [f"**SomaAgent** · {when}", "", f"*The reply failed: {data.get('message', '')}*", ""]
        elif event.type == EventType.ASSISTANT_CANCELLED:
            partial = str(data.get("partial") or "")
            lines += [f"**SomaAgent** · {when}", "", (partial + "\n\n" if partial else "") + "*Stopped.*", ""]
    return "\n".join(lines).rstrip() + "\n"


def chats_page(
    *, principal: Principal, offset: int, limit: int = CHAT_PAGE, markdown: bool = False
) -> list[str]:
    """The caller's chats ``offset`` to ``offset + limit``, oldest first: each as JSON, or as
    Markdown (``chat_markdown``)."""
    sessions = session_list(tenant=principal.tenant, owner=principal.session_owner).order_by(
        "created_at", "id"
    )
    if markdown:
        return [chat_markdown(session=s) for s in sessions[offset : offset + limit]]
    return [
        json.dumps(chat_document(principal=principal, session=s), separators=(",", ":"))
        for s in sessions[offset : offset + limit]
    ]
