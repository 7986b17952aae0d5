"""The policy port: the shipped Rego in-process and through an OPA-speaking HTTP server give the same answers.

The remote adapter talks real HTTP to ``tests/stubs/opa_server.py``, which
evaluates the same Rego files with its own copy of the data (pushed to it like
to a real OPA). Fail-closed paths: server down, server erroring, server that
lost its data.
"""

from __future__ import annotations

import httpx
import pytest

from somaagent.audit import Actor
from somaagent.errors import PolicyDenied, ValidationFailed
from somaagent.models import AuditLog, Persona, PolicyData
from somaagent.policy import policy_authorize
from somaagent.policy.data import policy_data_set, policy_document_validate, tenant_policy_data
from somaagent.policy.embedded import RegoPolicy
from somaagent.policy.remote import OpaPolicy
from somaagent.policy.types import PolicyRequest
from tests.live import free_port
from tests.somaagent.conftest import new_tenant

pytestmark = pytest.mark.django_db

STAFF = Actor(label="user:staff", is_staff=True)


@pytest.fixture
def world():
    """Tenant A with policy data, its personas P (restricted) and Q; tenant B without data."""
    a, b = new_tenant(), new_tenant()
    p = Persona.objects.create(tenant=a, name="restricted")
    q = Persona.objects.create(tenant=a, name="free")
    policy_data_set(
        tenant=a,
        document={
            "denied_actions": ["memory.write"],
            "denied_tools": ["shell"],
            "allowed_tools": ["calculator", "web_search", "shell"],
            "personas": {
                str(p.pk): {"denied_actions": ["conversation.send"], "denied_tools": ["web_search"]}
            },
        },
        actor=STAFF,
    )
    return {"A": str(a.pk), "B": str(b.pk), "P": str(p.pk), "Q": str(q.pk), None: None}


# (tenant, persona, action, resource, context, allowed, reasons)
CASES = [
    ("A", None, "conversation.send", "session:new", {}, True, ()),
    ("A", "Q", "conversation.send", "session:1", {}, True, ()),
    ("A", "P", "conversation.send", "session:1", {}, False, ("action_denied_for_persona",)),
    ("A", None, "memory.write", "session:1", {}, False, ("action_denied_for_tenant",)),
    ("A", "P", "memory.write", "session:1", {}, False, ("action_denied_for_tenant",)),
    ("A", None, "tool.execute", "calculator", {}, True, ()),
    ("A", None, "tool.execute", "shell", {}, False, ("tool_denied",)),
    ("A", None, "tool.execute", "python", {}, False, ("tool_not_allowed",)),
    ("A", "P", "tool.execute", "web_search", {}, False, ("tool_denied",)),
    ("A", "Q", "tool.execute", "web_search", {}, True, ()),
    ("A", None, "attachments.upload", "attachment", {"mime": "text/plain"}, True, ()),
    ("B", None, "conversation.send", "session:new", {}, True, ()),
    ("B", None, "memory.write", "session:1", {}, True, ()),
    ("B", None, "tool.execute", "shell", {}, True, ()),
    ("B", None, "settings.update", "ui_setting:x", {"actor_role": "member"}, False, ("settings_need_admin",)),
    ("B", None, "settings.update", "ui_setting:x", {"actor_role": "admin"}, True, ()),
    (None, None, "settings.update", "ui_setting:x", {"actor_role": "staff"}, True, ()),
    ("B", None, "shell.open", "x", {}, False, ("unknown_action",)),
]


def request_for(world, case):
    tenant, persona, action, resource, context, *_ = case
    data = tenant_policy_data(tenant_id=world[tenant])
    request = PolicyRequest(
        tenant=world[tenant] or "",
        persona_id=world[persona],
        action=action,
        resource=resource,
        context={**context, "policy_version": data.version},
    )
    return request, data


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}-{c[3]}" for c in CASES])
def test_embedded_and_opa_adapters_decide_alike(world, opa, case):
    embedded, remote = RegoPolicy(), OpaPolicy(opa.url, timeout=2)
    request, data = request_for(world, case)
    local = embedded.decide(request, data)
    over_http = remote.decide(request, data)
    assert (local.allowed, local.reasons) == (case[5], case[6])
    assert (over_http.allowed, over_http.reasons) == (local.allowed, local.reasons)


def test_a_restarted_opa_never_decides_on_missing_data(world, opa):
    remote = OpaPolicy(opa.url, timeout=2)
    denied = ("A", None, "memory.write", "session:1", {}, False, ())
    allowed = ("A", None, "conversation.send", "session:1", {}, True, ())
    assert remote.decide(*request_for(world, denied)).allowed is False
    httpx.post(f"{opa.url}/_reset")  # OPA restarted: it knows no tenant data now
    # Without the version check the empty OPA would allow memory.write; the adapter re-pushes instead.
    decision = remote.decide(*request_for(world, denied))
    assert decision.allowed is False and decision.reasons == ("action_denied_for_tenant",)
    assert remote.decide(*request_for(world, allowed)).allowed is True
    pushes = [entry for entry in httpx.get(f"{opa.url}/_log").json() if entry[0] == "PUT"]
    assert pushes and all(p[1] == f"/v1/data/tenants/{world['A']}" for p in pushes)


def test_opa_unreachable_fails_closed(world, use_opa):
    use_opa(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(PolicyDenied) as caught:
        policy_authorize(tenant=world["B"], persona_id=None, action="conversation.send", resource="s")
    assert caught.value.code == "policy_unavailable" and caught.value.status_code == 403


def test_opa_answering_errors_fails_closed(world, opa, use_opa):
    use_opa(opa.url)
    policy_authorize(tenant=world["B"], persona_id=None, action="conversation.send", resource="s")
    httpx.post(f"{opa.url}/_fail", json={"status": 500})
    with pytest.raises(PolicyDenied) as caught:
        policy_authorize(tenant=world["B"], persona_id=None, action="conversation.send", resource="s")
    assert caught.value.code == "policy_unavailable"


def test_policy_authorize_through_opa_denies_with_reasons(world, opa, use_opa):
    use_opa(opa.url)
    with pytest.raises(PolicyDenied) as caught:
        policy_authorize(tenant=world["A"], persona_id=world["P"], action="conversation.send", resource="s")
    assert caught.value.code == "policy_denied"
    assert caught.value.details["reasons"] == ["action_denied_for_persona"]


def test_edit_reaches_the_next_decision_in_both_adapters(world, opa, use_opa):
    from somaagent.models import Tenant

    tenant_b = Tenant.objects.get(pk=world["B"])
    for url in ("", opa.url):
        use_opa(url)
        policy_data_set(tenant=tenant_b, document={"denied_actions": []}, actor=STAFF)
        policy_authorize(tenant=tenant_b, persona_id=None, action="memory.write", resource="s")
        policy_data_set(tenant=tenant_b, document={"denied_actions": ["memory.write"]}, actor=STAFF)
        with pytest.raises(PolicyDenied):
            policy_authorize(tenant=tenant_b, persona_id=None, action="memory.write", resource="s")


def test_policy_data_changes_are_versioned_and_audited(world):
    row = PolicyData.objects.get(tenant_id=world["A"])
    assert row.version == 1
    policy_data_set(tenant=row.tenant, document={}, actor=STAFF)
    row.refresh_from_db()
    assert row.version == 2 and row.document == {}
    entries = AuditLog.objects.filter(tenant_id=world["A"], action="policy_data.changed").order_by(
        "created_at"
    )
    assert [e.details["version"] for e in entries] == [1, 2]
    assert entries.last().details["before"]["denied_actions"] == ["memory.write"]


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"denied_actions": ["nope"]},
        {"denied_actions": "memory.write"},
        {"denid_actions": ["memory.write"]},
        {"personas": {"not-a-uuid": {}}},
        {"personas": {"7b0c5a52-9d1e-4d2f-8f8e-0c1b2a3d4e5f": {}}},
        {"allowed_tools": [1, 2]},
    ],
)
def test_malformed_policy_data_is_refused_and_nothing_changes(world, document):
    tenant = PolicyData.objects.get(tenant_id=world["A"]).tenant
    with pytest.raises(ValidationFailed):
        policy_document_validate(tenant=tenant, document=document)
    with pytest.raises(ValidationFailed):
        policy_data_set(tenant=tenant, document=document, actor=STAFF)
    assert PolicyData.objects.get(tenant=tenant).version == 1


def test_another_tenants_persona_cannot_be_named_in_policy_data(world):
    other = new_tenant()
    foreign = Persona.objects.create(tenant=other, name="x")
    tenant = PolicyData.objects.get(tenant_id=world["A"]).tenant
    with pytest.raises(ValidationFailed) as caught:
        policy_document_validate(tenant=tenant, document={"personas": {str(foreign.pk): {}}})
    assert f"personas.{foreign.pk}" in caught.value.details


def test_embedded_decisions_are_memoised_per_data_version(world, monkeypatch):
    from somaagent.models import Tenant
    from somaagent.policy import embedded as embedded_module

    calls = []
    real_evaluate = embedded_module.evaluate

    def counting(interpreter, policy_input):
        calls.append(policy_input)
        return real_evaluate(interpreter, policy_input)

    engine = RegoPolicy(decision_cache_size=2)
    monkeypatch.setattr(embedded_module, "evaluate", counting)
    case = ("B", None, "memory.write", "session:1", {}, True, ())
    request, data = request_for(world, case)
    assert engine.decide(request, data).allowed
    assert engine.decide(request, data).allowed
    assert len(calls) == 1  # the repeat is answered from the memo

    policy_data_set(
        tenant=Tenant.objects.get(pk=world["B"]), document={"denied_actions": ["memory.write"]}, actor=STAFF
    )
    request, data = request_for(world, case)
    decision = engine.decide(request, data)
    assert (decision.allowed, decision.reasons) == (False, ("action_denied_for_tenant",))
    assert len(calls) == 2  # a new version is evaluated, never taken from the old entry

    for resource in ("session:2", "session:3"):  # the memo stays bounded: the oldest entry goes
        engine.decide(PolicyRequest(**{**request.__dict__, "resource": resource}), data)
    engine.decide(request, data)
    assert len(calls) == 5


def test_the_decision_memo_is_bounded_in_bytes_not_only_in_entries(world):
    import sys

    engine = RegoPolicy(decision_cache_size=64)
    request, data = request_for(world, ("B", None, "memory.write", "session:1", {}, True, ()))
    for n in range(64):  # 64 inputs of 100 KB each
        big = PolicyRequest(**{**request.__dict__, "context": {"text": f"{n}:" + "x" * 100_000}})
        engine.decide(big, data)
    held = sum(sys.getsizeof(part) for key in engine._decisions._items for part in key)
    assert held < 64 * 1_000, f"the memo holds {held} bytes of keys for 64 entries"


def test_a_policy_that_does_not_compile_stops_the_adapter():
    from somaagent.policy.types import PolicyEngineError

    with pytest.raises(PolicyEngineError, match="does not compile"):
        RegoPolicy([("soma", "package soma\n\nallow if {{{ not rego")])
