"""Policy ``memory.write``: a tenant whose policy denies it gets replies but no memory writes."""

from __future__ import annotations

import pytest

from conversations.models import EventType, Turn
from conversations.turn.claim import turn_claim
from conversations.turn.end import turn_ended
from conversations.turn.finish import turn_finish
from memory.models import MemoryWrite
from somaagent.audit import Actor
from somaagent.policy.data import policy_data_set
from tests.memory.helpers import make_tenant
from tests.memory.test_recall import claim_for

pytestmark = pytest.mark.django_db
STAFF = Actor(label="user:test-staff", is_staff=True)


def finish(tenant, message):
    claimed = claim_for(tenant, message)
    claim = turn_claim(turn_id=claimed.turn_id, owner="test", ended=turn_ended)
    assert claim is not None
    turn_finish(claim=claim, type=EventType.ASSISTANT_FINAL, data={"message": "noted"}, ended=turn_ended)
    return claim


def test_allowed_tenant_remembers_both_messages() -> None:
    tenant = make_tenant()
    claim = finish(tenant, "remember that I like tea")
    assert MemoryWrite.objects.filter(session_id=claim.session_id).count() == 2


def test_denied_tenant_gets_the_reply_but_no_memory_write() -> None:
    tenant = make_tenant()
    policy_data_set(tenant=tenant, document={"denied_actions": ["memory.write"]}, actor=STAFF)
    claim = finish(tenant, "remember that I like tea")
    assert Turn.objects.get(pk=claim.turn_id).status == Turn.Status.COMPLETED
    assert not MemoryWrite.objects.filter(session_id=claim.session_id).exists()
