"""Importing chats (issue 18): SomaAgent's own export and ChatGPT's ``conversations.json``.

Each imported chat becomes a new session of the caller's, holding its messages and
replies as ``user.message`` and ``assistant.final`` events in their order, on their
branches when the export has them (``parent_id``), each reply naming the message it
answers, with your feedback on them (tool calls, errors and attachments' bytes are not
carried over; no turn runs, nothing is sent to memory). The whole file is read and
checked before anything is written, and every chat is written in one transaction: a bad
or hostile file gets a 400 naming what is wrong, and creates nothing.

ChatGPT keeps a conversation as a tree (``mapping``: node → parent, children); the
chat imported is the branch that ends at its ``current_node``, the one its user last saw.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from conversations.models import EventType, Feedback, Session, SessionEvent
from conversations.services.events import role_of
from conversations.services.export import FORMAT
from conversations.services.feedback import MAX_COMMENT_CHARS, feedback_tags
from somaagent.errors import ValidationFailed
from somaagent.identity.principal import Principal
from somaagent.json_input import text_storable

MAX_CHATS = 1000
MAX_MESSAGES = 10_000  # per chat
MAX_TEXT_CHARS = 200_000  # per message
MAX_TOTAL_MESSAGES = 100_000


@dataclass
class ImportedChat:
    title: str
    messages: list[tuple[str, str, datetime | None, str]] = field(
        default_factory=list
    )  # type, text, at, model
    source: str = ""
    # Each message's parent (an index into messages; None: a first message). Empty: one line.
    parents: list[int | None] = field(default_factory=list)
    # The importer's feedback on replies: (index into messages, rating, comment, tags).
    feedback: list[tuple[int, str, str, list[str]]] = field(default_factory=list)


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _bad(message: str, where: str = "file") -> ValidationFailed:
    return ValidationFailed(f"Cannot import: {message}", details={where: "invalid_import"})


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _bad(f"{where} is not text.", where)
    if len(value) > MAX_TEXT_CHARS:
        raise _bad(f"{where} is longer than {MAX_TEXT_CHARS} characters.", where)
    return text_storable(value, field=where)


def _when(value: Any) -> datetime | None:
    try:
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1e11:
            return datetime.fromtimestamp(float(value), tz=UTC)
        if isinstance(value, str) and value:
            parsed = datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _title(value: Any, where: str) -> str:
    return _text(value, where).strip()[:200] if value is not None else ""


def _own_chat(doc: Any, where: str) -> ImportedChat:
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        raise _bad("a chat needs its events.", where)
    session = _obj(doc.get("session"))
    chat = ImportedChat(title=_title(session.get("title"), f"{where}.session.title"), source="somaagent")
    # Exports with branches name each event's parent; a kept message's parent is its nearest
    # kept ancestor (deltas, tool calls and errors are left out).
    tree = any(isinstance(e, dict) and e.get("parent_id") for e in doc["events"])
    nearest: dict[str, int | None] = {}
    replies: dict[str, int] = {}  # a reply's event_id in the file -> its index in messages
    for i, event in enumerate(doc["events"]):
        at = f"{where}.events[{i}]"
        if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
            raise _bad("an event is not an object with data.", at)
        parent = _kept_parent(event, nearest, at) if tree else None
        kind = event.get("type")
        if kind == EventType.USER_MESSAGE:
            text, model = _text(event["data"].get("message", ""), f"{at}.data.message"), ""
        elif kind == EventType.ASSISTANT_FINAL:
            text = _text(event["data"].get("message", ""), f"{at}.data.message")
            model = _text(event["data"].get("model") or "", f"{at}.data.model")[:200]
        else:
            if tree:
                nearest[str(event.get("event_id"))] = parent
            continue  # deltas, tool calls, errors: not part of an imported history
        if tree:
            nearest[str(event.get("event_id"))] = len(chat.messages)
            chat.parents.append(parent)
        if kind == EventType.ASSISTANT_FINAL and isinstance(event.get("event_id"), str):
            replies[event["event_id"]] = len(chat.messages)
        chat.messages.append((kind, text, _when(event.get("occurred_at")), model))
    chat.feedback = _own_feedback(doc.get("feedback"), replies, where)
    return chat


def _own_feedback(raw: Any, replies: dict[str, int], where: str) -> list[tuple[int, str, str, list[str]]]:
    """The export's feedback (yours, on its replies), checked like ``PUT …/feedback`` checks it."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _bad("feedback must be a list.", f"{where}.feedback")
    found: list[tuple[int, str, str, list[str]]] = []
    for i, item in enumerate(raw):
        at = f"{where}.feedback[{i}]"
        item = _obj(item)
        named = item.get("event_id")
        reply = replies.get(named) if isinstance(named, str) else None
        if reply is None:
            raise _bad("feedback must name a reply of the chat.", f"{at}.event_id")
        if any(f[0] == reply for f in found):
            raise _bad("one feedback per reply.", f"{at}.event_id")
        if item.get("rating") not in Feedback.Rating.values:
            raise _bad('a rating is "up" or "down".', f"{at}.rating")
        comment = _text(item.get("comment") or "", f"{at}.comment")
        if len(comment) > MAX_COMMENT_CHARS:
            raise _bad(f"a comment has at most {MAX_COMMENT_CHARS} characters.", f"{at}.comment")
        try:
            tags = feedback_tags(item.get("tags"))
        except ValidationFailed as exc:
            raise _bad(str(exc.message), f"{at}.tags") from None
        found.append((reply, str(item["rating"]), comment, tags))
    return found


def _kept_parent(event: dict[str, Any], nearest: dict[str, int | None], at: str) -> int | None:
    """The index of the nearest kept message above ``event`` (its parent must come before it)."""
    if not isinstance(event.get("event_id"), str) or str(event["event_id"]) in nearest:
        raise _bad("an event of a chat with branches needs its own event_id.", f"{at}.event_id")
    parent = event.get("parent_id")
    if parent is None:
        return None
    if not isinstance(parent, str) or parent not in nearest:
        raise _bad("an event's parent_id names no event before it.", f"{at}.parent_id")
    return nearest[parent]


def _chatgpt_chat(doc: Any, where: str) -> ImportedChat:
    if not isinstance(doc, dict) or not isinstance(doc.get("mapping"), dict):
        raise _bad("a ChatGPT conversation needs its mapping.", where)
    mapping: dict[str, Any] = doc["mapping"]
    node_id = doc.get("current_node")
    if not isinstance(node_id, str) or node_id not in mapping:
        raise _bad("current_node does not name a node of the mapping.", f"{where}.current_node")
    branch: list[Any] = []
    seen: set[str] = set()
    while isinstance(node_id, str):
        if node_id in seen or len(seen) > MAX_MESSAGES * 2:
            raise _bad("the mapping's parent links loop or run too long.", f"{where}.mapping")
        seen.add(node_id)
        node = mapping.get(node_id)
        if not isinstance(node, dict):
            raise _bad(f"node {node_id[:60]!r} is missing.", f"{where}.mapping")
        branch.append(node)
        node_id = node.get("parent")
    chat = ImportedChat(title=_title(doc.get("title"), f"{where}.title"), source="chatgpt")
    for node in reversed(branch):
        message = node.get("message")
        if not isinstance(message, dict):
            continue
        role = _obj(message.get("author")).get("role")
        parts = _list(_obj(message.get("content")).get("parts"))
        text = "\n".join(p for p in parts if isinstance(p, str)).strip()
        if role not in ("user", "assistant") or not text:
            continue  # system prompts, tool output, images only
        text = _text(text, f"{where}.mapping.{str(node.get('id', ''))[:60]}")
        model = (
            str(_obj(message.get("metadata")).get("model_slug") or "")[:200] if role == "assistant" else ""
        )
        kind = EventType.USER_MESSAGE if role == "user" else EventType.ASSISTANT_FINAL
        chat.messages.append((kind, text, _when(message.get("create_time")), model))
    return chat


def import_parse(doc: Any) -> list[ImportedChat]:
    """The chats of an uploaded document, checked whole; ValidationFailed (400) otherwise."""
    if isinstance(doc, list):  # ChatGPT's conversations.json
        if len(doc) > MAX_CHATS:
            raise _bad(f"more than {MAX_CHATS} conversations.")
        chats = [_chatgpt_chat(c, f"[{i}]") for i, c in enumerate(doc)]
    elif isinstance(doc, dict) and doc.get("format") == FORMAT:
        if isinstance(doc.get("chats"), list):
            if len(doc["chats"]) > MAX_CHATS:
                raise _bad(f"more than {MAX_CHATS} chats.")
            chats = [_own_chat(c, f"chats[{i}]") for i, c in enumerate(doc["chats"])]
        else:
            chats = [_own_chat(doc, "chat")]
    else:
        raise _bad(f'not a SomaAgent export ("format": "{FORMAT}") nor ChatGPT\'s conversations.json.')
    if not chats:
        raise _bad("there is no chat in it.")
    for i, chat in enumerate(chats):
        if len(chat.messages) > MAX_MESSAGES:
            raise _bad(f"chat {i} has more than {MAX_MESSAGES} messages.")
    if sum(len(c.messages) for c in chats) > MAX_TOTAL_MESSAGES:
        raise _bad(f"more than {MAX_TOTAL_MESSAGES} messages in all.")
    return chats


def _answered(
    messages: list[tuple[str, str, datetime | None, str]], parents: list[int | None]
) -> list[int | None]:
    """For each reply, the message it answers (its nearest user message above it on its branch),
    as the turn's replies name it (``reply_to``): what regenerate and the web chat go by."""
    answers: list[int | None] = []
    for i, (kind, *_rest) in enumerate(messages):
        above = parents[i] if kind == EventType.ASSISTANT_FINAL else None
        while above is not None and messages[above][0] != EventType.USER_MESSAGE:
            above = parents[above]
        answers.append(above)
    return answers


def import_chats(*, principal: Principal, chats: list[ImportedChat]) -> list[Session]:
    """Create one session per chat, with its messages, all in one transaction."""
    now = timezone.now()
    sessions: list[Session] = []
    with transaction.atomic():
        for chat in chats:
            ids = [uuid.uuid4() for _ in chat.messages]
            parents = chat.parents or [i - 1 if i else None for i in range(len(chat.messages))]
            session = Session.objects.create(
                tenant=principal.tenant,
                created_by=principal.user,
                title=chat.title or "Imported chat",
                metadata={"imported_from": chat.source},
                last_seq=len(chat.messages),
                # The newest message ends the active branch; nothing after it yet.
                leaf_event_id=ids[-1] if ids else None,
                leaf_parent_id=ids[p] if ids and (p := parents[-1]) is not None else None,
                chain_seq=len(chat.messages),
            )
            answers = _answered(chat.messages, parents)
            SessionEvent.objects.bulk_create(
                [
                    SessionEvent(
                        session=session,
                        seq=seq,
                        event_id=ids[seq - 1],
                        parent_id=ids[p] if (p := parents[seq - 1]) is not None else None,
                        type=kind,
                        role=role_of(kind),
                        occurred_at=at or now,
                        payload=(
                            {"message": text, "attachments": [], "metadata": {"imported": True}}
                            if kind == EventType.USER_MESSAGE
                            else {"message": text, "model": model, "imported": True}
                            | ({"reply_to": str(ids[a])} if (a := answers[seq - 1]) is not None else {})
                        ),
                    )
                    for seq, (kind, text, at, model) in enumerate(chat.messages, start=1)
                ],
                batch_size=500,
            )
            if chat.feedback:
                by_id = {
                    e.event_id: e for e in SessionEvent.objects.filter(session=session, event_id__in=ids)
                }
                Feedback.objects.bulk_create(
                    Feedback(
                        tenant=principal.tenant,
                        session=session,
                        event=by_id[ids[index]],
                        author=principal.label,
                        rating=rating,
                        comment=comment,
                        tags=tags,
                        model=chat.messages[index][3],
                        created_at=now,
                        updated_at=now,
                    )
                    for index, rating, comment, tags in chat.feedback
                )
            sessions.append(session)
    return sessions
