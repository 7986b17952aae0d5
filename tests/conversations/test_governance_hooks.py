"""Scopes, policy and budgets on the other ways in: attachment uploads and the WebSocket."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from conversations.models import Attachment, Session, SessionEvent
from somaagent.audit import Actor
from somaagent.budgets.services import budget_set
from somaagent.policy.data import policy_data_set
from tests.conversations.test_consumers import WAIT, Reader, accept, communicator, run
from tests.somaagent.conftest import client_for, member, new_key, new_tenant, new_user

STAFF = Actor(label="user:staff", is_staff=True)


def upload(raw: str):
    return client_for(raw).post(
        "/v1/attachments", {"file": SimpleUploadedFile("a.txt", b"hello", content_type="text/plain")}
    )


@pytest.mark.django_db
def test_upload_needs_the_attachments_scope_and_the_policy():
    tenant = new_tenant()
    _, reader = new_key(tenant, ["conversations:read", "conversations:write"])
    _, uploader = new_key(tenant, ["attachments:write"])
    refused = upload(reader)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_scope"
    assert upload(uploader).status_code == 201
    policy_data_set(tenant=tenant, document={"denied_actions": ["attachments.upload"]}, actor=STAFF)
    denied = upload(uploader)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "policy_denied"
    assert Attachment.objects.for_tenant(tenant).count() == 1


@pytest.mark.django_db(transaction=True)
def test_websocket_accepts_a_jwt_and_enforces_scopes():
    tenant = new_tenant()
    user = new_user()
    member(user, tenant)
    sid = accept(tenant, "hello")["session_id"]
    Session.objects.filter(pk=sid).update(created_by=user)  # a member sees the sessions they started
    token = (
        client_for()
        .post("/v1/auth/token", {"username": user.username, "password": "pw-Secret-123"}, format="json")
        .json()["access"]
    )
    _, write_only = new_key(tenant, ["conversations:write"])
    _, read_only = new_key(tenant, ["conversations:read"])

    async def go() -> None:
        comm = communicator(f"/ws/sessions/{sid}/", key=token)
        assert (await comm.connect(timeout=WAIT))[0]
        await Reader(comm).until(lambda f: f["type"] == "user.message")
        await comm.disconnect()
        assert await communicator(f"/ws/sessions/{sid}/", key=write_only).connect(timeout=WAIT) == (
            False,
            4403,
        )
        comm = communicator(f"/ws/sessions/{sid}/?after=1", key=read_only)
        assert (await comm.connect(timeout=WAIT))[0]
        await comm.send_json_to({"type": "message", "message": "sneaky", "ref": "r"})
        error = await Reader(comm).until(lambda f: f["type"] == "error")
        assert error["status"] == 403 and error["error"]["code"] == "insufficient_scope"
        await comm.disconnect()

    run(go)
    # The read-only key's message was refused: the session holds the first message only (a
    # worker of another test may have answered it meanwhile, which is not what this checks).
    messages = SessionEvent.objects.filter(session_id=sid, type="user.message")
    assert list(messages.values_list("payload__message", flat=True)) == ["hello"]


@pytest.mark.django_db(transaction=True)
def test_websocket_messages_pass_the_gateways_policy_and_budget():
    tenant = new_tenant()
    _, key = new_key(tenant)
    sid = accept(tenant, "hello")["session_id"]

    async def go() -> None:
        comm = communicator(f"/ws/sessions/{sid}/?after=1", key=key)
        assert (await comm.connect(timeout=WAIT))[0]
        reader = Reader(comm)
        await comm.send_json_to({"type": "message", "message": "denied", "ref": "p"})
        denied = await reader.until(lambda f: f["type"] == "error")
        assert denied["status"] == 403 and denied["error"]["code"] == "policy_denied"
        await sync_budget()
        await comm.send_json_to({"type": "message", "message": "over budget", "ref": "b"})
        over = await reader.until(lambda f: f["type"] == "error")
        assert over["status"] == 429 and over["error"]["code"] == "budget_exceeded"
        await comm.disconnect()

    from asgiref.sync import sync_to_async

    async def sync_budget() -> None:
        await sync_to_async(policy_data_set)(tenant=tenant, document={}, actor=STAFF)
        await sync_to_async(budget_set)(tenant=tenant, daily_tokens=1, monthly_tokens=None, actor=STAFF)

    policy_data_set(tenant=tenant, document={"denied_actions": ["conversation.send"]}, actor=STAFF)
    run(go)
    assert SessionEvent.objects.filter(session_id=sid, type="user.message").count() == 1
