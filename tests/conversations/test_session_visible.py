"""Which sessions a caller may follow (a stream's opening and its re-checks): the tenant's, or,
for a member in the web chat, the member's own; a malformed id is a missing session."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model

from conversations.models import Session
from conversations.selectors import session_visible, visible_session_id
from somaagent.errors import NotFound
from somaagent.identity.principal import Principal
from tests.conftest import make_tenant_key

pytestmark = pytest.mark.django_db


def _member(tenant, name: str) -> Principal:
    user = get_user_model().objects.create_user(username=f"{name}-{uuid.uuid4().hex[:8]}", password="x" * 12)
    return Principal(tenant=tenant, user=user)


def test_the_tenants_session_is_visible_to_its_key_and_no_other_tenants():
    mine, theirs = make_tenant_key().tenant, make_tenant_key().tenant
    session = Session.objects.create(tenant=mine)
    assert visible_session_id(Principal(tenant=mine), str(session.pk)) == session.pk
    assert not session_visible(principal=Principal(tenant=theirs), session_id=session.pk)
    with pytest.raises(NotFound):
        visible_session_id(Principal(tenant=theirs), str(session.pk))


def test_a_member_sees_only_the_sessions_they_started():
    tenant = make_tenant_key().tenant
    alice, bob = _member(tenant, "alice"), _member(tenant, "bob")
    session = Session.objects.create(tenant=tenant, created_by=alice.user)
    assert session_visible(principal=alice, session_id=session.pk)
    assert not session_visible(principal=bob, session_id=session.pk)
    assert session_visible(principal=Principal(tenant=tenant), session_id=session.pk)  # a key: the tenant's


def test_a_deleted_or_malformed_session_is_not_found():
    tenant = make_tenant_key().tenant
    session = Session.objects.create(tenant=tenant)
    sid = session.pk
    session.delete()
    assert not session_visible(principal=Principal(tenant=tenant), session_id=sid)
    for bad in ("not-a-uuid", "", "1' OR '1'='1"):
        with pytest.raises(NotFound):
            visible_session_id(Principal(tenant=tenant), bad)
