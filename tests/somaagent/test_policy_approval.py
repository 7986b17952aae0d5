"""The policy's third answer: a tool call it allows only once a person approves it (approval_tools)."""

from __future__ import annotations

import httpx
import pytest

from somaagent.audit import Actor
from somaagent.errors import PolicyDenied, ValidationFailed
from somaagent.models import Persona
from somaagent.policy import policy_check
from somaagent.policy.data import policy_data_set, tenant_policy_data
from somaagent.policy.embedded import RegoPolicy
from somaagent.policy.remote import OpaPolicy
from somaagent.policy.types import PolicyRequest
from tests.somaagent.conftest import new_tenant

pytestmark = pytest.mark.django_db

STAFF = Actor(label="user:staff", is_staff=True)


@pytest.fixture
def world():
    a = new_tenant()
    p = Persona.objects.create(tenant=a, name="careful")
    policy_data_set(
        tenant=a,
        document={
            "denied_tools": ["shell"],
            "approval_tools": [
                "python",
                {"tool": "http_fetch", "when_args": {"method": "POST"}, "reason": "posting needs a yes"},
                "shell",
            ],
            "personas": {str(p.pk): {"approval_tools": ["*"]}},
        },
        actor=STAFF,
    )
    return {"A": str(a.pk), "P": str(p.pk), "B": str(new_tenant().pk)}


# (tenant, persona, tool, args, allowed, approval reasons)
CASES = [
    ("A", None, "python", {"code": "1"}, True, ("tool_needs_approval",)),
    ("A", None, "http_fetch", {"url": "x", "method": "POST"}, True, ("posting needs a yes",)),
    ("A", None, "http_fetch", {"url": "x", "method": "GET"}, True, ()),
    ("A", None, "http_fetch", {"url": "x"}, True, ()),
    ("A", None, "current_time", {}, True, ()),
    ("A", None, "shell", {}, False, ()),  # refused wins over approval
    ("A", "P", "current_time", {}, True, ("tool_needs_approval",)),  # the persona's "*"
    ("B", None, "python", {"code": "1"}, True, ()),  # another tenant's rules do not apply
]


def _request(world, case):
    tenant, persona, tool, args, *_ = case
    data = tenant_policy_data(tenant_id=world[tenant])
    request = PolicyRequest(
        tenant=world[tenant],
        persona_id=world[persona] if persona else None,
        action="tool.execute",
        resource=tool,
        context={"args": args, "policy_version": data.version},
    )
    return request, data


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}-{len(c[3])}" for c in CASES])
def test_embedded_and_opa_ask_for_approval_alike(world, opa, case):
    request, data = _request(world, case)
    local = RegoPolicy().decide(request, data)
    remote = OpaPolicy(opa.url, timeout=2).decide(request, data)
    assert local.allowed is case[4]
    if local.allowed:
        assert local.approval == case[5] and local.needs_approval is bool(case[5])
    assert (remote.allowed, remote.approval) == (local.allowed, local.approval if local.allowed else ())


def test_policy_check_returns_the_approval_and_fails_closed(world, opa, use_opa):
    decision = policy_check(
        tenant=world["A"], persona_id=None, action="tool.execute", resource="python", context={"args": {}}
    )
    assert decision.needs_approval and decision.approval == ("tool_needs_approval",)
    use_opa(opa.url)
    httpx.post(f"{opa.url}/_fail", json={"status": 500})
    with pytest.raises(PolicyDenied) as caught:
        policy_check(tenant=world["A"], persona_id=None, action="tool.execute", resource="python")
    assert caught.value.code == "policy_unavailable"


@pytest.mark.parametrize(
    "rules",
    [
        "python",
        [3],
        [""],
        [{"tool": "python", "when": {}}],
        [{"when_args": {}}],
        [{"tool": "python", "when_args": []}],
        [{"tool": "python", "reason": 5}],
    ],
)
def test_malformed_approval_rules_are_refused(rules):
    with pytest.raises(ValidationFailed) as caught:
        policy_data_set(tenant=new_tenant(), document={"approval_tools": rules}, actor=STAFF)
    assert any(k.startswith("approval_tools") for k in caught.value.details)
