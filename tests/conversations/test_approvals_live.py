"""Tool calls that wait for a person's approval, end to end on the live worker with the stub model.

The tenant's policy (``approval_tools``) makes the call wait; the turn parks
(no worker holds it), the answer over the API resumes it on any worker.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.models import ToolApproval, Turn
from somaagent.models import AuditLog
from tests.conversations.approval_support import answer, approval_of, needs_approval, until_requested
from tests.conversations.support import send
from tests.live import read_stream, wait_until
from tests.tools.helpers import call, model_requests, of_type
from tools.models import ToolRun

pytestmark = pytest.mark.integration


def marker() -> str:
    return f"m{uuid.uuid4().hex[:12]}"


def _parked(turn_id: str) -> bool:
    turn = Turn.objects.get(pk=turn_id)
    return turn.awaiting_approval and turn.lease_owner == "" and turn.lease_expires_at is None


def test_an_approved_call_runs_and_the_reply_goes_on_where_it_stopped(live_system, tenant_key, llm_stub):
    needs_approval(tenant_key.tenant, "current_time")
    m = marker()
    accepted = send(live_system, tenant_key.key, f"{m} time? [[tool=current_time:{{}}]] [[echo_tools]]")
    sid = accepted["session_id"]
    events = until_requested(live_system, tenant_key.key, sid)
    request = events[-1]
    assert [e["type"] for e in events][-2:] == ["tool.start", "tool.approval_requested"]
    data = request["data"]
    assert (
        data["tool_name"] == "current_time" and data["args"] == {} and data["reason"] == "tool_needs_approval"
    )
    assert data["args_editable"] is True and data["request_id"] == events[-2]["data"]["request_id"]
    expires = timezone.datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00"))
    assert timedelta(seconds=590) < expires - timezone.now() <= timedelta(seconds=600)
    # Parked: no lease, nothing ran, the model was asked once.
    wait_until(lambda: _parked(accepted["turn_id"]), timeout=10, what="the turn to park")
    assert ToolRun.objects.get(pk=data["request_id"]).status == "pending"
    assert len(model_requests(llm_stub.url, m)) == 1

    response = answer(live_system, tenant_key.key, sid, data["call_id"], decision="approve")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "approved" and body["call_id"] == data["call_id"] and body["decided_by"]

    rest = read_stream(live_system, tenant_key.key, sid, after=int(request["id"]), timeout=60)
    types = [e["type"] for e in rest]
    assert types[0] == "tool.approval_decided" and types[-1] == "assistant.final", types
    assert "assistant.started" not in types  # the same reply goes on, it does not start over
    (result,) = of_type(rest, "tool.result")
    assert (
        result["data"]["status"] == "success"
        and result["data"]["result"]["iso"] in rest[-1]["data"]["message"]
    )
    first, second = model_requests(llm_stub.url, m)
    assert second["messages"][: len(first["messages"])] == first["messages"]
    assert (
        second["messages"][-1]["role"] == "tool"
        and '"status": "success"' in second["messages"][-1]["content"]
    )
    turn = Turn.objects.get(pk=accepted["turn_id"])
    assert turn.status == "completed" and not turn.awaiting_approval and turn.resume_state is None
    assert turn.attempts == 1
    entry = AuditLog.objects.get(
        action="tool.approval_decided", target=f"tool_approval:{approval_of(sid).pk}"
    )
    assert entry.details["decision"] == "approved" and entry.tenant_id == tenant_key.tenant.pk


def test_a_denied_call_does_not_run_and_the_model_is_told(live_system, tenant_key, llm_stub):
    needs_approval(tenant_key.tenant, "current_time")
    m = marker()
    sid = send(live_system, tenant_key.key, f"{m} [[tool=current_time:{{}}]] [[echo_tools]]")["session_id"]
    request = until_requested(live_system, tenant_key.key, sid)[-1]
    response = answer(live_system, tenant_key.key, sid, request["data"]["call_id"], decision="deny")
    assert response.status_code == 200 and response.json()["status"] == "denied"
    rest = read_stream(live_system, tenant_key.key, sid, after=int(request["id"]), timeout=60)
    (result,) = of_type(rest, "tool.result")
    assert result["data"]["status"] == "blocked" and result["data"]["result"]["error"] == "approval_denied"
    assert rest[-1]["type"] == "assistant.final" and "approval_denied" in rest[-1]["data"]["message"]
    run = ToolRun.objects.get(pk=request["data"]["request_id"])
    assert run.status == "blocked" and run.started_at is None and run.worker == ""
    assert "approval_denied" in model_requests(llm_stub.url, m)[-1]["messages"][-1]["content"]
    audit = AuditLog.objects.filter(action="tool.approval_decided", tenant=tenant_key.tenant)
    assert [a.details["decision"] for a in audit] == ["denied"]


def test_edited_arguments_are_checked_and_the_tool_runs_with_them(live_system, tenant_key, llm_stub):
    needs_approval(tenant_key.tenant, "python")
    m = marker()
    message = f"{m} {call('python', {'code': 'print(1)'})} [[echo_tools]]"
    sid = send(live_system, tenant_key.key, message)["session_id"]
    request = until_requested(live_system, tenant_key.key, sid)[-1]
    call_id = request["data"]["call_id"]
    bad = answer(live_system, tenant_key.key, sid, call_id, decision="approve", arguments={"source": 1})
    assert bad.status_code == 400 and "Invalid arguments" in bad.json()["error"]["message"]
    mixed = answer(live_system, tenant_key.key, sid, call_id, decision="deny", arguments={"code": "x"})
    assert mixed.status_code == 400
    assert approval_of(sid).status == "pending"  # a refused answer changes nothing

    edited = {"code": "print(6 * 7)"}
    ok = answer(live_system, tenant_key.key, sid, call_id, decision="approve", arguments=edited)
    assert ok.status_code == 200 and ok.json()["edited_arguments"] == edited
    rest = read_stream(live_system, tenant_key.key, sid, after=int(request["id"]), timeout=60)
    assert rest[0]["type"] == "tool.approval_decided" and rest[0]["data"]["args"] == edited
    (result,) = of_type(rest, "tool.result")
    assert result["data"]["status"] == "success" and result["data"]["result"]["stdout"] == "42\n"
    assert ToolRun.objects.get(pk=request["data"]["request_id"]).args == edited
    told = model_requests(llm_stub.url, m)[-1]["messages"][-1]["content"]
    assert '"arguments_used": {"code": "print(6 * 7)"}' in told
    assert AuditLog.objects.get(action="tool.approval_decided", tenant=tenant_key.tenant).details["edited"]


def test_an_answer_is_applied_once(live_system, tenant_key):
    needs_approval(tenant_key.tenant, "current_time")
    sid = send(live_system, tenant_key.key, "[[tool=current_time:{}]] [[echo_tools]]")["session_id"]
    request = until_requested(live_system, tenant_key.key, sid)[-1]
    call_id = request["data"]["call_id"]
    first = answer(live_system, tenant_key.key, sid, call_id, decision="approve")
    again = answer(live_system, tenant_key.key, sid, call_id, decision="approve")
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    other = answer(live_system, tenant_key.key, sid, call_id, decision="deny")
    assert other.status_code == 409 and other.json()["error"]["code"] == "approval_decided"
    rest = read_stream(live_system, tenant_key.key, sid, after=int(request["id"]), timeout=60)
    assert len(of_type(rest, "tool.approval_decided")) == 1 and len(of_type(rest, "tool.result")) == 1
    assert sum(1 for e in rest if e["type"].startswith("assistant.") and e["type"] != "assistant.delta") == 1
    assert AuditLog.objects.filter(action="tool.approval_decided", tenant=tenant_key.tenant).count() == 1
    late = answer(live_system, tenant_key.key, sid, call_id, decision="deny")
    assert late.status_code == 409
    assert answer(live_system, tenant_key.key, sid, "no-such-call", decision="approve").status_code == 404


def test_another_tenant_cannot_answer(live_system, tenant_key, other_tenant_key):
    needs_approval(tenant_key.tenant, "current_time")
    sid = send(live_system, tenant_key.key, "[[tool=current_time:{}]]")["session_id"]
    request = until_requested(live_system, tenant_key.key, sid)[-1]
    call_id = request["data"]["call_id"]
    foreign = answer(live_system, other_tenant_key.key, sid, call_id, decision="approve")
    assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "not_found"
    assert approval_of(sid).status == "pending"
    assert answer(live_system, tenant_key.key, sid, call_id, decision="deny").status_code == 200
    read_stream(live_system, tenant_key.key, sid, after=int(request["id"]), timeout=60)


def test_an_unanswered_approval_expires_as_a_denial(live_system, tenant_key):
    needs_approval(tenant_key.tenant, "current_time")
    sid = send(live_system, tenant_key.key, "[[tool=current_time:{}]] [[echo_tools]]")["session_id"]
    request = until_requested(live_system, tenant_key.key, sid)[-1]
    # Its time runs out (as SOMA_APPROVAL_TIMEOUT_SECONDS would have it); the beat's turn sweep ends it.
    ToolApproval.objects.filter(session_id=sid).update(expires_at=timezone.now() - timedelta(seconds=1))
    late = answer(live_system, tenant_key.key, sid, request["data"]["call_id"], decision="approve")
    assert late.status_code == 409
    rest = read_stream(live_system, tenant_key.key, sid, after=int(request["id"]), timeout=60)
    decided = of_type(rest, "tool.approval_decided")[0]["data"]
    assert decided["decision"] == "expired" and decided["decided_by"] == "approval_expiry"
    (result,) = of_type(rest, "tool.result")
    assert result["data"]["result"]["error"] == "approval_expired" and rest[-1]["type"] == "assistant.final"
    assert approval_of(sid).status == "expired"


def test_cancel_while_waiting_ends_the_turn_at_once(live_system, tenant_key):
    needs_approval(tenant_key.tenant, "current_time")
    accepted = send(live_system, tenant_key.key, "Some words first [[tool=current_time:{}]]")
    sid = accepted["session_id"]
    request = until_requested(live_system, tenant_key.key, sid)[-1]
    wait_until(lambda: _parked(accepted["turn_id"]), timeout=10, what="the turn to park")
    with live_system.client(tenant_key.key) as c:
        cancelled = c.post(f"/v1/sessions/{sid}/cancel")
    assert cancelled.status_code == 202 and cancelled.json()["cancelled_turns"] == [accepted["turn_id"]]
    rest = read_stream(live_system, tenant_key.key, sid, after=int(request["id"]), timeout=30)
    assert [e["type"] for e in rest] == ["assistant.cancelled"]
    assert Turn.objects.get(pk=accepted["turn_id"]).status == "cancelled"
    assert approval_of(sid).status == "cancelled"
    late = answer(live_system, tenant_key.key, sid, request["data"]["call_id"], decision="approve")
    assert late.status_code == 409
    # The session takes the next message as usual.
    again = send(live_system, tenant_key.key, "[[reply=after the cancel]]", session_id=sid)
    events = read_stream(live_system, tenant_key.key, sid, after=int(rest[-1]["id"]), timeout=60)
    assert events[-1]["type"] == "assistant.final" and events[-1]["data"]["message"] == "after the cancel"
    assert Turn.objects.get(pk=again["turn_id"]).status == "completed"


def test_always_allow_in_this_chat_skips_the_next_approvals(live_system, tenant_key):
    needs_approval(tenant_key.tenant, "current_time")
    sid = send(live_system, tenant_key.key, "[[tool=current_time:{}]]")["session_id"]
    request = until_requested(live_system, tenant_key.key, sid)[-1]
    ok = answer(live_system, tenant_key.key, sid, request["data"]["call_id"], decision="approve", always=True)
    assert ok.status_code == 200 and ok.json()["always"] is True
    first = read_stream(live_system, tenant_key.key, sid, after=int(request["id"]), timeout=60)
    send(live_system, tenant_key.key, "[[tool=current_time:{}]] again", session_id=sid)
    second = read_stream(live_system, tenant_key.key, sid, after=int(first[-1]["id"]), timeout=60)
    assert not of_type(second, "tool.approval_requested") and second[-1]["type"] == "assistant.final"
    assert of_type(second, "tool.result")[0]["data"]["status"] == "success"
    # Another chat still asks.
    other = send(live_system, tenant_key.key, "[[tool=current_time:{}]]")["session_id"]
    asked = until_requested(live_system, tenant_key.key, other)[-1]
    answer(live_system, tenant_key.key, other, asked["data"]["call_id"], decision="deny")
    read_stream(live_system, tenant_key.key, other, after=int(asked["id"]), timeout=60)


def test_a_rule_on_the_arguments_asks_only_for_matching_calls(live_system, tenant_key):
    needs_approval(tenant_key.tenant, {"tool": "python", "when_args": {"code": "print(2)"}, "reason": "two"})
    free = send(live_system, tenant_key.key, f"{call('python', {'code': 'print(1)'})}")["session_id"]
    events = read_stream(live_system, tenant_key.key, free, timeout=60)
    assert not of_type(events, "tool.approval_requested") and events[-1]["type"] == "assistant.final"
    asked = send(live_system, tenant_key.key, f"{call('python', {'code': 'print(2)'})}")["session_id"]
    request = until_requested(live_system, tenant_key.key, asked)[-1]
    assert request["data"]["reason"] == "two"
    answer(live_system, tenant_key.key, asked, request["data"]["call_id"], decision="deny")
    read_stream(live_system, tenant_key.key, asked, after=int(request["id"]), timeout=60)


def test_a_reply_that_waits_twice_goes_on_each_time_and_its_text_is_whole(live_system, tenant_key):
    needs_approval(tenant_key.tenant, "current_time")
    accepted = send(live_system, tenant_key.key, "[[tool=current_time:{}]] [[tool_rounds=2]] [[tokens=3]]")
    sid = accepted["session_id"]
    first = until_requested(live_system, tenant_key.key, sid)[-1]
    assert (
        answer(live_system, tenant_key.key, sid, first["data"]["call_id"], decision="approve").status_code
        == 200
    )
    second = read_stream(
        live_system,
        tenant_key.key,
        sid,
        after=int(first["id"]),
        until=lambda e: e["type"] == "tool.approval_requested",
        timeout=60,
    )[-1]
    assert second["data"]["call_id"] != first["data"]["call_id"]
    assert (
        answer(live_system, tenant_key.key, sid, second["data"]["call_id"], decision="approve").status_code
        == 200
    )
    events = read_stream(live_system, tenant_key.key, sid, timeout=60)
    types = [e["type"] for e in events]
    assert (
        types.count("assistant.started") == 1
        and types.count("tool.result") == 2
        and types[-1] == "assistant.final"
    )
    deltas = of_type(events, "assistant.delta")
    assert "".join(d["data"]["text"] for d in deltas) == events[-1]["data"]["message"] != ""
    assert [int(e["id"]) for e in events] == sorted(int(e["id"]) for e in events)
    assert Turn.objects.get(pk=accepted["turn_id"]).attempts == 1


def test_calls_that_need_no_approval_run_while_the_reply_waits(live_system, tenant_key, llm_stub):
    needs_approval(tenant_key.tenant, "python")
    m = marker()
    message = f"{m} [[tool=current_time:{{}}]] {call('python', {'code': 'print(3)'})} [[echo_tools]]"
    accepted = send(live_system, tenant_key.key, message)
    sid = accepted["session_id"]
    request = until_requested(live_system, tenant_key.key, sid)[-1]
    assert request["data"]["tool_name"] == "python"
    free = ToolRun.objects.filter(turn_id=accepted["turn_id"], tool="current_time")
    wait_until(lambda: free.filter(status="success").exists(), timeout=30, what="the free call to run")
    assert Turn.objects.get(pk=accepted["turn_id"]).awaiting_approval
    assert (
        answer(live_system, tenant_key.key, sid, request["data"]["call_id"], decision="deny").status_code
        == 200
    )
    rest = read_stream(live_system, tenant_key.key, sid, after=int(request["id"]), timeout=60)
    statuses = {r["data"]["tool_name"]: r["data"]["status"] for r in of_type(rest, "tool.result")}
    assert (
        statuses == {"current_time": "success", "python": "blocked"} and rest[-1]["type"] == "assistant.final"
    )
    tool_messages = [msg for msg in model_requests(llm_stub.url, m)[-1]["messages"] if msg["role"] == "tool"]
    assert len(tool_messages) == 2 and "approval_denied" in tool_messages[1]["content"]
