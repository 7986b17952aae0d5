"""Listing a branch over the API (issue 18): the events endpoint's ``branch`` and ``all``.

The events endpoint lists the active branch unless asked for another
(``branch``) or for every event (``all=1``); each page says which branches its
events could switch to (``siblings``). See conversations/branches.py.
"""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request

from conversations.branches import branch_after, branch_leaf_through, branch_siblings, branch_walk
from conversations.envelope import envelope_of
from conversations.models import Session
from somaagent.errors import NotFound, ValidationFailed

BRANCH = OpenApiParameter(
    "branch",
    {"type": "string", "format": "uuid"},
    description=(
        "an event id: list the branch through it (down to its newest descendant); "
        "default: the active branch, the one ending at the session's newest event"
    ),
)
ALL = OpenApiParameter(
    "all", {"type": "string", "enum": ["1", "true"]}, description="every event of every branch, in order"
)


def all_requested(request: Request) -> bool:
    raw = request.query_params.get("all")
    if raw in (None, "", "0", "false"):
        return False
    if raw in ("1", "true"):
        if request.query_params.get("branch"):
            raise ValidationFailed("Give branch or all, not both.", details={"all": raw})
        return True
    raise ValidationFailed("all must be 1 or true.", details={"all": str(raw)[:40]})


def listed_leaf(request: Request, session: Session) -> uuid.UUID | None:
    """The leaf of the branch to list: the one ``branch`` names, else the session's active one
    (None: a session whose events were never linked, listed whole)."""
    raw = request.query_params.get("branch")
    if not raw:
        return session.leaf_event_id
    try:
        through = uuid.UUID(raw)
    except ValueError:
        raise ValidationFailed("branch must be an event id.", details={"branch": raw[:40]}) from None
    leaf = branch_leaf_through(session_id=session.pk, event_id=through)
    if leaf is None:
        raise NotFound("No such event in this session.", details={"branch": raw})
    return leaf


def branch_page(
    *, session: Session, leaf: uuid.UUID, after: int, before: int | None, limit: int
) -> dict[str, Any]:
    """One page of a branch, upwards (``before``) or onwards (``after``), with the choices of
    branch its events have (``siblings``)."""
    body: dict[str, Any] = {"next_cursor": None}
    if before is not None:
        events = [
            e
            for e in branch_walk(session_id=session.pk, leaf=leaf, before=before, limit=limit + 1)
            if e.seq > after
        ]
        page = events[-limit:]
        body["prev_cursor"] = str(page[0].seq) if len(events) > limit else None
    else:
        events = branch_after(session_id=session.pk, leaf=leaf, after=after, limit=limit + 1)
        page = events[:limit]
        body["next_cursor"] = str(page[-1].seq) if len(events) > limit else None
    body["events"] = [envelope_of(e) for e in page]
    body["leaf"] = str(leaf)
    body["siblings"] = branch_siblings(session_id=session.pk, events=page)
    return body
