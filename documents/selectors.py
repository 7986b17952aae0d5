"""Who sees which collection, for the API (a caller) and for a turn (a session).

- A caller with ``owner`` None (tenant admin, staff, API key) sees every
  collection of the tenant; a member (``owner`` = their user) sees the shared
  ones and their own (private, and their chats' files). Another tenant's or
  member's ids are indistinguishable from missing ones (404).
- A turn uses the shared collections bound to no persona or to the session's
  persona, the session owner's private collections (same persona rule) and the
  chat's own files.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Q, QuerySet

from documents.models import Collection, Document
from somaagent.errors import NotFound
from somaagent.ids import uuid_or_none
from somaagent.models import Tenant
from somaagent.versioned import Versioned, invalidate_on_change


def parse_uuid(value: object) -> uuid.UUID:
    parsed = uuid_or_none(value)
    if parsed is None:
        raise NotFound("No such collection.")
    return parsed


def collections_visible(*, tenant: Tenant | uuid.UUID, owner: Any = None) -> QuerySet[Collection]:
    rows = Collection.objects.filter(tenant=tenant)
    if owner is not None:
        rows = rows.filter(Q(owner=owner) | Q(owner__isnull=True, session_id__isnull=True))
    return rows


def collection_get(*, tenant: Tenant, collection_id: object, owner: Any = None) -> Collection:
    found = collections_visible(tenant=tenant, owner=owner).filter(pk=parse_uuid(collection_id)).first()
    if found is None:
        raise NotFound("No such collection.")
    return found


def document_get(*, collection: Collection, document_id: object, with_content: bool = False) -> Document:
    try:
        did = parse_uuid(document_id)
    except NotFound:
        raise NotFound("No such document.") from None
    rows = Document.objects.filter(collection=collection, pk=did)
    found = (rows if with_content else rows.defer("content")).first()
    if found is None:
        raise NotFound("No such document.")
    return found


def documents_of(*, collection: Collection) -> QuerySet[Document]:
    return Document.objects.filter(collection=collection).defer("content").order_by("-created_at")


def _has_collections(tenant_id: Any) -> bool:
    return Collection.objects.filter(tenant_id=str(tenant_id)).exists()


# tenant id -> whether it has any collection at all: a turn of a tenant without documents asks
# the database nothing (a Redis version check at most once a second), read again after a change.
tenant_has_collections = Versioned("document_collections", _has_collections)


def collections_follow_changes() -> None:
    """From ``ready()``: a collection made or deleted makes every process ask again."""
    invalidate_on_change(Collection, lambda changed: tenant_has_collections.bump(str(changed.tenant_id)))


def turn_collection_ids(
    *, tenant_id: uuid.UUID, persona_id: uuid.UUID | None, session_id: uuid.UUID, owner_id: Any = None
) -> list[uuid.UUID]:
    """The collections a turn of this session draws on (one query; none for a tenant that has none)."""
    if not tenant_has_collections.get(str(tenant_id)):
        return []
    persona_rule = (
        Q(personas__isnull=True) | Q(personas=persona_id) if persona_id else Q(personas__isnull=True)
    )
    shared = Q(owner__isnull=True, session_id__isnull=True) & persona_rule
    scope = shared | Q(session_id=session_id)
    if owner_id is not None:
        scope |= Q(owner_id=owner_id, session_id__isnull=True) & persona_rule
    return list(
        Collection.objects.filter(Q(tenant_id=tenant_id) & scope).values_list("id", flat=True).distinct()
    )
