"""What a turn is while it runs and when it ends: the claim a worker holds, the cursors it
took, how it ended (for ``turn_end``), and the statuses and topic that name it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from conversations.models import EventType, SessionEvent, Turn
from conversations.services.events import Attach, attach_after, attach_under

if TYPE_CHECKING:
    from conversations.services.summary import SummaryDue

TURN_TOPIC = "conversation.turn"
TURN_TASK = "conversation.run_turn"

TERMINAL_STATUS = {
    EventType.ASSISTANT_FINAL: Turn.Status.COMPLETED,
    EventType.ASSISTANT_ERROR: Turn.Status.FAILED,
    EventType.ASSISTANT_CANCELLED: Turn.Status.CANCELLED,
}


class LeaseLost(Exception):
    """Another worker owns the turn now (or it ended): stop without writing."""


@dataclass(frozen=True)
class ClaimedTurn:
    """A turn this worker holds the lease of, with what its run needs from the claim's one read."""

    turn_id: uuid.UUID
    session_id: uuid.UUID
    tenant_id: uuid.UUID
    persona_id: uuid.UUID | None
    user_event_id: int
    user_event_uuid: uuid.UUID
    user_seq: int
    owner: str
    attempt: int
    restart: bool
    user_message: str = ""  # the text of user_event, loaded with the claim
    user_metadata: dict[str, Any] | None = None
    user_occurred_at: datetime | None = None
    summary: str = ""  # the session's running summary of older messages
    summary_covered: int = 0  # the last cursor the summary covers
    memory_namespace: str = ""  # where its memories are written and recalled (memory.port)
    session_owner_id: Any = None  # the member who started the session (their private documents)
    # The cursor assistant.started took for the turn's first delta (``reserved_cursor_take``).
    first_cursor: ReservedCursor | None = field(default=None, compare=False)
    regenerated: bool = False  # another reply to a message that has one: its branch starts there
    user_parent_id: uuid.UUID | None = None  # the event before the message on its branch
    session_branched: bool = False  # the session has more than one branch
    summary_event_id: uuid.UUID | None = None  # the last message the summary covers
    # The turn's newest persisted event: where its next one attaches (``attach_next``).
    tip: TurnTip = field(default_factory=lambda: TurnTip(None), compare=False)
    # A parked turn going on after its approvals (conversations/turn/approvals.py): its state.
    resume: dict[str, Any] | None = field(default=None, compare=False)

    def attach_next(self) -> Attach:
        """Where the turn's next persisted event goes: after its newest one, or, for its first,
        after its message (a regenerated reply: right under it, beside the other replies)."""
        tip = self.tip.event_id
        if tip is not None:
            return attach_after(tip)
        return attach_under(self.user_event_uuid) if self.regenerated else attach_after(self.user_event_uuid)

    def reserved_cursor_take(self) -> int | None:
        """The cursor the claim committed for the turn's first delta, to whichever of the turn's
        writers needs a cursor first (a delta, or a persisted event when no delta came first:
        it reuses it, so an unused reservation leaves no hole); None once taken."""
        return self.first_cursor.take() if self.first_cursor is not None else None


class TurnTip:
    """The event id of a running turn's newest persisted event (None before its first)."""

    def __init__(self, event_id: uuid.UUID | None) -> None:
        self.event_id = event_id


class ReservedCursor:
    def __init__(self, seq: int) -> None:
        self.seq: int | None = seq
        self._lock = threading.Lock()

    def take(self) -> int | None:
        with self._lock:
            seq, self.seq = self.seq, None
        return seq


@dataclass(frozen=True)
class TurnEnd:
    """How a turn ended, for what follows its end (conversations.turn.end)."""

    turn_id: uuid.UUID
    tenant_id: uuid.UUID
    session_id: uuid.UUID
    persona_id: uuid.UUID | None
    user_event_uuid: uuid.UUID
    user_message: str
    user_occurred_at: datetime | None
    event: SessionEvent  # the terminal event
    model: str = ""
    usage: dict[str, int] = field(default_factory=dict)
    claim: ClaimedTurn | None = None  # when a worker ran it
    analysis: dict[str, Any] | None = None  # the route's record (turn_analyses)
    summary_due: SummaryDue | None = None  # queue a summary run (decided when the prompt was read)
    title_automatic: bool = False  # the session's title is still its first words

    @property
    def type(self) -> str:
        return self.event.type

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.event.payload)


Ended = Callable[[TurnEnd], None]
