"""Memory follows the active branch (issue 18): which recalled memories a turn may use.

A memory remembers the message it came from (its session and event). A message on a branch
that was edited or regenerated away is not what the chat says any more, so its memory is not
recalled: a memory of a chat with branches is used only if its message lies on that chat's
active branch, or, for the turn's own chat, on the turn's own branch (the one its message
continues; beyond the history window this is what memory is for). Memories of chats without
branches, and of none (a deleted chat, a note), are used as before. Switching back to a branch
brings its memories back: nothing is deleted.

Cost: one query for the chats the recalled memories come from, and for each one with branches a
walk up from its leaf as far as its oldest recalled message (recall finds a handful); with the
embedded memory store they run in the search's transaction (memory.services.recall).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from conversations.branches import branch_holds
from conversations.models import Session
from memory.services.recall import RecalledMemory
from somaagent.ids import uuid_or_none


def memories_on_branches(
    found: list[RecalledMemory], *, session_id: uuid.UUID, leaf: uuid.UUID | None
) -> list[RecalledMemory]:
    """``found`` without the memories of messages off the branch their chat shows (``leaf``: the
    turn's own branch in its own chat ``session_id``; None: a first message, nothing before it)."""
    wanted: dict[uuid.UUID, set[uuid.UUID]] = {}
    for item in found:
        sid, eid = uuid_or_none(item.session_id), uuid_or_none(item.event_id)
        if sid is not None and eid is not None:
            wanted.setdefault(sid, set()).add(eid)
    if not wanted:
        return found
    leaves = dict(
        Session.objects.filter(pk__in=list(wanted), branched=True).values_list("pk", "leaf_event_id")
    )
    if session_id in wanted and session_id in leaves:
        leaves[session_id] = leaf
    dropped: set[tuple[uuid.UUID, uuid.UUID]] = set()
    for sid, tip in leaves.items():
        on = branch_holds(session_id=sid, leaf=tip, event_ids=wanted[sid]) if tip is not None else set()
        dropped |= {(sid, eid) for eid in wanted[sid] - on}
    return [
        item for item in found if (uuid_or_none(item.session_id), uuid_or_none(item.event_id)) not in dropped
    ]


def branch_filter(
    *, session_id: uuid.UUID, leaf: uuid.UUID | None
) -> Callable[[list[RecalledMemory]], list[RecalledMemory]]:
    return lambda found: memories_on_branches(found, session_id=session_id, leaf=leaf)
