"""Reads: sessions and events scoped to a tenant, the bounded history window."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import connection
from django.db.models import QuerySet

from conversations.branches import branch_walk
from conversations.models import Attachment, EventType, Session, SessionEvent
from somaagent.errors import NotFound
from somaagent.identity.principal import Principal
from somaagent.ids import uuid_or_none
from somaagent.models import Tenant
from somaagent.sql import p_uuid

HISTORY_TYPES = (EventType.USER_MESSAGE, EventType.ASSISTANT_FINAL)


def parse_uuid(value: object, *, what: str = "session") -> uuid.UUID:
    parsed = uuid_or_none(value)
    if parsed is None:
        raise NotFound(f"No such {what}.")
    return parsed


def _visible(tenant: Tenant, owner: Any) -> QuerySet[Session]:
    sessions = Session.objects.for_tenant(tenant)
    return sessions if owner is None else sessions.filter(created_by=owner)


def session_get(*, tenant: Tenant, session_id: object, owner: Any = None) -> Session:
    """The caller's session; another tenant's (or, with ``owner``, another user's) is
    indistinguishable from a missing one."""
    sid = parse_uuid(session_id)
    session = _visible(tenant, owner).filter(pk=sid).first()
    if session is None:
        raise NotFound("No such session.")
    return session


def session_for(principal: Principal, session_id: object) -> Session:
    return session_get(tenant=principal.tenant, session_id=session_id, owner=principal.session_owner)


def session_visible(*, principal: Principal, session_id: object) -> bool:
    """Whether the session is the caller's (as ``session_get``): one indexed read, in SQL written
    out, since a stream asks at its opening and again at every heartbeat (the ORM spent four
    times the database's time building the query)."""
    sid = parse_uuid(session_id)
    owner = principal.session_owner
    params = [p_uuid(sid), p_uuid(principal.tenant.pk)]
    sql = _VISIBLE_SQL
    if owner is not None:
        sql += _VISIBLE_OWNER_SQL
        params.append(owner.pk)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone() is not None


_VISIBLE_SQL = (
    f"SELECT 1 FROM {Session._meta.db_table} WHERE {Session._meta.pk.column} = %s"
    f" AND {Session._meta.get_field('tenant').column} = %s"
)
_VISIBLE_OWNER_SQL = f" AND {Session._meta.get_field('created_by').column} = %s"


def visible_session_id(principal: Principal, session_id: object) -> uuid.UUID:
    """The id of the caller's session, for a reader that needs nothing else of it (a stream);
    NotFound as ``session_get``."""
    sid = parse_uuid(session_id)
    if not session_visible(principal=principal, session_id=sid):
        raise NotFound("No such session.")
    return sid


def session_owned(*, tenant_id: uuid.UUID, session_id: object, owner: Any) -> bool:
    """Whether ``owner`` created the tenant's session (one indexed read)."""
    sid = parse_uuid(session_id)
    return Session.objects.filter(tenant_id=tenant_id, pk=sid, created_by=owner).exists()


def session_list(*, tenant: Tenant, owner: Any = None) -> QuerySet[Session]:
    return _visible(tenant, owner).order_by("-updated_at", "-created_at")


def events_after(*, session_id: uuid.UUID, after: int, limit: int) -> list[SessionEvent]:
    return list(SessionEvent.objects.filter(session_id=session_id, seq__gt=after).order_by("seq")[:limit])


def events_between(*, session_id: uuid.UUID, first: int, before: int) -> list[SessionEvent]:
    return list(
        SessionEvent.objects.filter(session_id=session_id, seq__gte=first, seq__lt=before).order_by("seq")
    )


def session_history_window(
    *, session_id: uuid.UUID, before: uuid.UUID | None, limit: int
) -> list[SessionEvent]:
    """The last ``limit`` messages of the branch that ends at event ``before`` (included), oldest
    first: the parent links are walked only as far as the window reaches, so the cost does not
    grow with the session's length (see conversations.branches)."""
    if before is None:
        return []
    return branch_walk(session_id=session_id, leaf=before, types=HISTORY_TYPES, limit=limit)


def summary_on_branch(*, session_id: uuid.UUID, leaf: uuid.UUID, covered_seq: int) -> uuid.UUID | None:
    """The newest message of the branch ending at ``leaf`` whose cursor is at most
    ``covered_seq``: a summary covering up to ``covered_seq`` is of this branch if it is the
    summary's last message (the walk from the leaf stops at it)."""
    found = branch_walk(
        session_id=session_id, leaf=leaf, types=HISTORY_TYPES, before=covered_seq + 1, limit=1
    )
    return found[0].event_id if found else None


def events_before(*, session_id: uuid.UUID, before: int, limit: int) -> list[SessionEvent]:
    """The last ``limit`` persisted events before a cursor, oldest first (history pages upwards)."""
    rows = list(SessionEvent.objects.filter(session_id=session_id, seq__lt=before).order_by("-seq")[:limit])
    rows.reverse()
    return rows


def attachment_get(*, tenant: Tenant, attachment_id: object, with_content: bool = False) -> Attachment:
    """The caller's attachment; another tenant's is indistinguishable from a missing one."""
    pk = parse_uuid(attachment_id, what="attachment")
    rows = Attachment.objects.for_tenant(tenant).filter(pk=pk)
    found = (rows if with_content else rows.defer("content")).first()
    if found is None:
        raise NotFound("No such attachment.")
    return found
