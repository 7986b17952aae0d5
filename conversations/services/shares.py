"""Read-only share links to a snapshot of a chat (issue 18).

A link shows the chat's messages and replies up to the event chosen when it was made
(later ones never appear), to anyone holding its token, without a login, until its
author revokes it or the chat is deleted. Staff turn sharing off for a tenant with the
feature flag ``share_links`` (on by default): no new links, and existing ones stop
opening.
"""

from __future__ import annotations

import re
import secrets

from django.db.models import QuerySet
from django.utils import timezone

from conversations.branches import branch_walk
from conversations.models import EventType, Session, SessionEvent, ShareLink
from conversations.selectors import parse_uuid
from somaagent.errors import Forbidden, NotFound
from somaagent.flags.services import flag_enabled
from somaagent.identity.principal import Principal

FLAG = "share_links"
MAX_SHOWN = 10_000  # events on a shared page
# What secrets.token_urlsafe makes (32 characters today; older links could be up to the column's 64).
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _sharing_on(tenant: object) -> bool:
    return flag_enabled(FLAG, tenant, default=True)


def share_create(*, principal: Principal, session: Session, up_to_event_id: object = None) -> ShareLink:
    if not _sharing_on(session.tenant_id):
        raise Forbidden("Sharing is turned off for this tenant.")
    if up_to_event_id is None:
        up_to, leaf = session.last_seq, session.leaf_event_id  # the active branch as it is now
    else:
        event = SessionEvent.objects.filter(
            session=session, event_id=parse_uuid(up_to_event_id, what="event")
        )
        found = event.values_list("seq", "event_id").first()
        if found is None:
            raise NotFound("No event with that id in this session.")
        up_to, leaf = found  # the branch that ends at that event
    return ShareLink.objects.create(
        token=secrets.token_urlsafe(24),
        tenant_id=session.tenant_id,
        session=session,
        author=principal.label,
        up_to_seq=up_to,
        leaf_event_id=leaf,
    )


def share_list(*, principal: Principal) -> list[ShareLink]:
    rows = ShareLink.objects.filter(tenant=principal.tenant, author=principal.label, revoked_at__isnull=True)
    return list(rows.select_related("session").order_by("-created_at")[:1000])


def shares_revoke(links: QuerySet[ShareLink]) -> int:
    """Revoke the links not revoked yet (they answer 404 from now on); how many were."""
    return links.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


def share_revoke(*, principal: Principal, share_id: object) -> None:
    revoked = shares_revoke(
        ShareLink.objects.filter(
            pk=parse_uuid(share_id, what="share link"), tenant=principal.tenant, author=principal.label
        )
    )
    if not revoked:
        raise NotFound("No such share link.")


def share_open(*, token: str) -> tuple[ShareLink, list[SessionEvent]]:
    """The link and the messages it shows; NotFound when unknown, revoked or turned off."""
    if not TOKEN_SHAPE.fullmatch(str(token)):  # e.g. a NUL, which PostgreSQL cannot compare: 500
        raise NotFound("This link does not exist or was revoked.")
    link = (
        ShareLink.objects.filter(token=str(token), revoked_at__isnull=True).select_related("session").first()
    )
    if link is None or not _sharing_on(link.tenant_id):
        raise NotFound("This link does not exist or was revoked.")
    kinds = [EventType.USER_MESSAGE, EventType.ASSISTANT_FINAL]
    if link.leaf_event_id is not None:  # one branch: the one that ends at the chosen event
        return link, branch_walk(
            session_id=link.session_id, leaf=link.leaf_event_id, types=kinds, limit=MAX_SHOWN
        )
    events = SessionEvent.objects.filter(
        session_id=link.session_id, seq__lte=link.up_to_seq, type__in=kinds
    ).order_by("seq")
    return link, list(events[:MAX_SHOWN])
