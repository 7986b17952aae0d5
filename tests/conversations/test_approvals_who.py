"""Who may answer an approval (members, admins, staff per setting) and answering over the WebSocket."""

from __future__ import annotations

import dataclasses
import json
import uuid

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from rest_framework.test import APIClient

from conversations.models import ToolApproval, Turn
from somaagent.models import AuditLog, Membership, Tenant
from tests.conftest import make_tenant_key
from tests.conversations.approval_support import needs_approval, until_requested
from tests.conversations.support import send
from tests.conversations.test_ws_live import frames_until, open_ws
from tests.live import TERMINAL, wait_until

pytestmark = pytest.mark.integration


def user_in(tenant: Tenant, role: str = Membership.Role.MEMBER) -> APIClient:
    user = get_user_model().objects.create_user(username=f"u-{uuid.uuid4().hex[:8]}", password="x" * 12)
    Membership.objects.create(user=user, tenant=tenant, role=role)
    client = APIClient()
    client.force_login(user)
    return client


def _pending(session_id: str) -> ToolApproval | None:
    approval = ToolApproval.objects.filter(session_id=session_id).first()
    if approval is None or not Turn.objects.get(pk=approval.turn_id).awaiting_approval:
        return None
    return approval


def test_only_the_member_who_started_the_chat_answers_and_staff_per_setting(live_system):
    tenant = make_tenant_key().tenant
    needs_approval(tenant, "current_time")
    alice, bob = user_in(tenant), user_in(tenant)
    admin = user_in(tenant, role=Membership.Role.ADMIN)
    started = alice.post("/v1/session/message", {"message": "[[tool=current_time:{}]]"}, format="json")
    assert started.status_code == 202, started.content
    sid, turn_id = started.json()["session_id"], started.json()["turn_id"]
    approval = wait_until(lambda: _pending(sid), timeout=60, what="the approval request")
    path = f"/v1/sessions/{sid}/approvals/{approval.call_id}"

    assert bob.post(path, {"decision": "approve"}, format="json").status_code == 404  # another member
    refused = admin.post(path, {"decision": "approve"}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "approval_not_yours"
    approval.refresh_from_db()
    assert approval.status == "pending"

    on = dataclasses.replace(
        settings.SOMA, tools=dataclasses.replace(settings.SOMA.tools, approval_by_staff=True)
    )
    with override_settings(SOMA=on):
        assert bob.post(path, {"decision": "approve"}, format="json").status_code == 404  # still not theirs
        answered = admin.post(path, {"decision": "deny"}, format="json")
    assert answered.status_code == 200 and answered.json()["decided_by"].startswith("user:u-")
    wait_until(lambda: Turn.objects.get(pk=turn_id).status == "completed", timeout=60, what="the reply")
    (entry,) = AuditLog.objects.filter(action="tool.approval_decided", tenant=tenant)
    assert entry.actor == answered.json()["decided_by"] and entry.details["decision"] == "denied"
    # Staff find it in admin (Tools → Tool approvals), read-only.
    staff = Client()
    staff.force_login(
        get_user_model().objects.create_user(
            username=f"s-{uuid.uuid4().hex[:8]}", password="x" * 12, is_staff=True, is_superuser=True
        )
    )
    page = staff.get(f"/admin/conversations/toolapproval/?q={sid}")
    assert (
        page.status_code == 200
        and "current_time" in page.content.decode()
        and "denied" in page.content.decode()
    )


def test_an_approval_answered_over_the_websocket(live_system, tenant_key):
    needs_approval(tenant_key.tenant, "current_time")
    accepted = send(live_system, tenant_key.key, "[[tool=current_time:{}]] [[echo_tools]]")
    sid = accepted["session_id"]
    request = until_requested(live_system, tenant_key.key, sid)[-1]
    with open_ws(live_system, sid, tenant_key.key, after=request["id"]) as ws:
        ws.send(json.dumps({"type": "approval", "call_id": "nope", "decision": "approve", "ref": "a"}))
        (missing,) = frames_until(ws, lambda f: f["type"] == "error")
        assert missing["status"] == 404 and missing["ref"] == "a"
        ws.send(json.dumps({"type": "approval", "call_id": request["data"]["call_id"], "decision": "maybe"}))
        (invalid,) = frames_until(ws, lambda f: f["type"] == "error")
        assert invalid["status"] == 400
        frame = {"type": "approval", "call_id": request["data"]["call_id"], "decision": "approve", "ref": "b"}
        ws.send(json.dumps(frame))
        frames = frames_until(ws, lambda f: f["type"] in TERMINAL)
    ack = next(f for f in frames if f["type"] == "ack")
    assert ack["status"] == 200 and ack["ref"] == "b" and ack["body"]["status"] == "approved"
    types = [f["type"] for f in frames if f["type"] != "ack"]
    assert types[0] == "tool.approval_decided" and "tool.result" in types and types[-1] == "assistant.final"
