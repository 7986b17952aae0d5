"""The OpenAI-compatible front door with the official ``openai`` SDK as the client, over real processes."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import openai
import pytest
from django.contrib.auth import get_user_model

from conversations.models import Session, SessionAlias
from somaagent.audit import Actor
from somaagent.budgets.services import budget_set
from somaagent.identity.apikeys import api_key_create
from somaagent.models import Membership, Persona
from tests.live import read_stream

pytestmark = pytest.mark.integration


def sdk(system, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{system.url}/v1", api_key=key, max_retries=0, timeout=60)


def body_of(failure: Any) -> dict[str, Any]:
    body = failure.value.body
    assert isinstance(body, dict), body
    return body


def user_said(message: str) -> str:
    return f"You said: {message}"


def prompts_with(stub_url: str, marker: str) -> list[list[dict[str, Any]]]:
    bodies = [e["body"] for e in httpx.get(f"{stub_url}/_log").json()]
    return [b["messages"] for b in bodies if marker in str(b["messages"][-1]["content"])]


def test_models_lists_the_alias_and_the_personas(live_system, tenant_key) -> None:
    Persona.objects.create(tenant=tenant_key.tenant, name="support")
    ids = [m.id for m in sdk(live_system, tenant_key.key).models.list()]
    assert ids == ["somaagent", "somaagent/support"]


def test_a_non_streaming_completion(live_system, tenant_key) -> None:
    client = sdk(live_system, tenant_key.key)
    raw = client.chat.completions.with_raw_response.create(
        model="somaagent",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello front door"}],
    )
    completion = raw.parse()
    assert completion.object == "chat.completion" and completion.model == "somaagent"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == user_said("hello front door")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    session_id = raw.headers["x-soma-session-id"]
    # It is a normal SomaAgent session: the same reply is in its events.
    events = read_stream(live_system, tenant_key.key, session_id)
    assert events[0]["data"]["message"] == "hello front door"
    assert events[0]["data"]["metadata"] == {"source": "openai"}
    assert events[-1]["data"]["message"] == completion.choices[0].message.content


def test_a_streaming_completion_with_usage(live_system, tenant_key) -> None:
    stream = sdk(live_system, tenant_key.key).chat.completions.create(
        model="somaagent",
        messages=[{"role": "user", "content": "count [[tokens=30]] [[delay=0.01]]"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "".join(f"t{i} " for i in range(30))
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1, "streamed, not one blob"
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 30
    assert all(c.usage is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")


def test_streaming_without_include_usage_sends_no_usage_chunk(live_system, tenant_key) -> None:
    chunks = list(
        sdk(live_system, tenant_key.key).chat.completions.create(
            model="somaagent", messages=[{"role": "user", "content": "[[tokens=3]]"}], stream=True
        )
    )
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)


def test_user_maps_to_one_session_so_the_conversation_continues(live_system, tenant_key, llm_stub) -> None:
    client = sdk(live_system, tenant_key.key)
    conversation = f"conv-{uuid.uuid4().hex}"
    marker = uuid.uuid4().hex
    first = client.chat.completions.with_raw_response.create(
        model="somaagent", messages=[{"role": "user", "content": "my name is Ada"}], user=conversation
    )
    second = client.chat.completions.with_raw_response.create(
        model="somaagent",
        messages=[
            {"role": "user", "content": "my name is Ada"},
            {"role": "assistant", "content": first.parse().choices[0].message.content},
            {"role": "user", "content": f"what is my name? {marker}"},
        ],
        user=conversation,
    )
    assert first.headers["x-soma-session-id"] == second.headers["x-soma-session-id"]
    alias = SessionAlias.objects.get(tenant=tenant_key.tenant, key=conversation)
    assert str(alias.session_id) == first.headers["x-soma-session-id"]
    (prompt,) = prompts_with(llm_stub.url, marker)
    assert {"role": "user", "content": "my name is Ada"} in prompt
    assert prompt.count({"role": "user", "content": "my name is Ada"}) == 1, "history comes from the session"


def test_the_session_header_continues_a_session(live_system, tenant_key) -> None:
    client = sdk(live_system, tenant_key.key)
    first = client.chat.completions.with_raw_response.create(
        model="somaagent", messages=[{"role": "user", "content": "one"}]
    )
    sid = first.headers["x-soma-session-id"]
    second = client.chat.completions.with_raw_response.create(
        model="somaagent",
        messages=[{"role": "user", "content": "two"}],
        extra_headers={"X-Soma-Session-Id": sid},
    )
    assert second.headers["x-soma-session-id"] == sid
    third = client.chat.completions.with_raw_response.create(
        model="somaagent", messages=[{"role": "user", "content": "three"}]
    )
    assert third.headers["x-soma-session-id"] != sid, "without a header or user, a new session"


def test_a_persona_model_runs_in_that_persona(live_system, tenant_key) -> None:
    persona = Persona.objects.create(
        tenant=tenant_key.tenant, name="pirate", system_prompt="Talk like a pirate."
    )
    raw = sdk(live_system, tenant_key.key).chat.completions.with_raw_response.create(
        model="somaagent/pirate", messages=[{"role": "user", "content": "ahoy"}]
    )
    assert Session.objects.get(pk=raw.headers["x-soma-session-id"]).persona_id == persona.pk


def test_a_bad_key_is_401_in_openai_shape(live_system) -> None:
    with pytest.raises(openai.AuthenticationError) as failure:
        sdk(live_system, "soma_nope").chat.completions.create(
            model="somaagent", messages=[{"role": "user", "content": "hi"}]
        )
    assert failure.value.status_code == 401
    assert failure.value.body == {
        "message": "Invalid or revoked API key.",
        "type": "authentication_error",
        "code": "invalid_api_key",
        "param": None,
    }
    with pytest.raises(openai.AuthenticationError):
        sdk(live_system, "soma_nope").models.list()
    r = httpx.post(f"{live_system.url}/v1/chat/completions", json={})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


def test_bad_requests_are_400_and_write_nothing(live_system, tenant_key) -> None:
    client = sdk(live_system, tenant_key.key)
    before = Session.objects.filter(tenant=tenant_key.tenant).count()
    with pytest.raises(openai.BadRequestError) as failure:
        client.chat.completions.create(model="somaagent", messages=[{"role": "assistant", "content": "x"}])
    assert body_of(failure)["param"] == "messages"
    assert body_of(failure)["type"] == "invalid_request_error"
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert body_of(missing)["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="somaagent", messages=[{"role": "user", "content": "x"}], n=3)
    r = httpx.post(
        f"{live_system.url}/v1/chat/completions",
        content=b"{nope",
        headers={"Authorization": f"Bearer {tenant_key.key}", "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and set(r.json()["error"]) == {"message", "type", "code", "param"}
    assert Session.objects.filter(tenant=tenant_key.tenant).count() == before


def test_another_tenants_session_is_404(live_system, tenant_key, other_tenant_key) -> None:
    theirs = sdk(live_system, other_tenant_key.key).chat.completions.with_raw_response.create(
        model="somaagent", messages=[{"role": "user", "content": "secret"}], user="shared-name"
    )
    sid = theirs.headers["x-soma-session-id"]
    with pytest.raises(openai.NotFoundError):
        sdk(live_system, tenant_key.key).chat.completions.create(
            model="somaagent",
            messages=[{"role": "user", "content": "peek"}],
            extra_headers={"X-Soma-Session-Id": sid},
        )
    mine = sdk(live_system, tenant_key.key).chat.completions.with_raw_response.create(
        model="somaagent", messages=[{"role": "user", "content": "hello"}], user="shared-name"
    )
    assert mine.headers["x-soma-session-id"] != sid, (
        "the same user string in another tenant is another session"
    )


def test_a_failed_turn_is_an_error_for_both_modes(live_system, tenant_key) -> None:
    client = sdk(live_system, tenant_key.key)
    with pytest.raises(openai.APIStatusError) as failure:
        client.chat.completions.create(
            model="somaagent", messages=[{"role": "user", "content": "[[status=400]]"}]
        )
    assert failure.value.status_code == 502 and body_of(failure)["code"] == "llm_rejected"
    stream = client.chat.completions.create(
        model="somaagent",
        messages=[{"role": "user", "content": "[[tokens=10]] [[break_after=3]]"}],
        stream=True,
    )
    received = []
    with pytest.raises(openai.APIError) as broken:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "t0 t1 t2 "
    assert body_of(broken)["code"] == "llm_stream_interrupted"


def test_an_idempotency_key_replays_the_same_turn(live_system, tenant_key) -> None:
    client = sdk(live_system, tenant_key.key)
    conversation = f"conv-{uuid.uuid4().hex}"
    key = {"Idempotency-Key": uuid.uuid4().hex}
    messages: list[Any] = [{"role": "user", "content": "once only"}]
    first = client.chat.completions.with_raw_response.create(
        model="somaagent", messages=messages, user=conversation, extra_headers=key
    )
    again = client.chat.completions.with_raw_response.create(
        model="somaagent", messages=messages, user=conversation, extra_headers=key
    )
    assert again.headers["x-soma-turn-id"] == first.headers["x-soma-turn-id"]
    assert again.parse().choices[0].message.content == first.parse().choices[0].message.content
    events = read_stream(live_system, tenant_key.key, first.headers["x-soma-session-id"])
    assert [e["type"] for e in events].count("user.message") == 1
    with pytest.raises(openai.ConflictError):
        client.chat.completions.create(
            model="somaagent",
            messages=[{"role": "user", "content": "other"}],
            user=conversation,
            extra_headers=key,
        )


STAFF = Actor(label="user:test-staff", is_staff=True)


def test_over_budget_at_the_gateway_is_429_with_retry_after(live_system, tenant_key) -> None:
    budget_set(tenant=tenant_key.tenant, daily_tokens=0, monthly_tokens=None, actor=STAFF)
    client = sdk(live_system, tenant_key.key)
    with pytest.raises(openai.RateLimitError) as failure:
        client.chat.completions.create(model="somaagent", messages=[{"role": "user", "content": "hi"}])
    assert failure.value.status_code == 429
    assert int(failure.value.response.headers["retry-after"]) >= 1
    assert body_of(failure)["code"] == "budget_exceeded" and body_of(failure)["type"] == "rate_limit_error"
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="somaagent", messages=[{"role": "user", "content": "hi"}], stream=True, user="u1"
        )
    assert not Session.objects.filter(tenant=tenant_key.tenant).exists(), "nothing written"
    assert not SessionAlias.objects.filter(tenant=tenant_key.tenant).exists()


def test_a_turn_refused_for_budget_is_429_too(live_system, tenant_key) -> None:
    # Enough for the gateway's estimate of the message, not for the turn's reservation of the reply.
    budget_set(tenant=tenant_key.tenant, daily_tokens=200, monthly_tokens=None, actor=STAFF)
    client = sdk(live_system, tenant_key.key)
    with pytest.raises(openai.RateLimitError) as failure:
        client.chat.completions.create(model="somaagent", messages=[{"role": "user", "content": "hi"}])
    assert body_of(failure)["code"] == "budget_exceeded"
    assert int(failure.value.response.headers["retry-after"]) >= 1
    stream = client.chat.completions.create(
        model="somaagent", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(openai.APIError) as broken:
        list(stream)
    assert body_of(broken)["code"] == "budget_exceeded"


def test_a_key_without_the_write_scope_cannot_send(live_system, tenant_key) -> None:
    _, read_only = api_key_create(tenant=tenant_key.tenant, name="ro", scopes=["conversations:read"])
    client = sdk(live_system, read_only)
    assert [m.id for m in client.models.list()] == ["somaagent"]
    with pytest.raises(openai.PermissionDeniedError) as failure:
        client.chat.completions.create(model="somaagent", messages=[{"role": "user", "content": "hi"}])
    assert body_of(failure)["code"] == "insufficient_scope" and body_of(failure)["type"] == "permission_error"


def member_token(system, tenant) -> str:
    user = get_user_model().objects.create_user(
        username=f"u-{uuid.uuid4().hex[:8]}", password="pw-Secret-123"
    )
    Membership.objects.create(user=user, tenant=tenant, role=Membership.Role.MEMBER)
    r = httpx.post(
        f"{system.url}/v1/auth/token", json={"username": user.username, "password": "pw-Secret-123"}
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access"])


def test_members_with_a_jwt_keep_their_conversations_apart(live_system, tenant_key) -> None:
    alice = sdk(live_system, member_token(live_system, tenant_key.tenant))
    bob = sdk(live_system, member_token(live_system, tenant_key.tenant))
    messages: list[Any] = [{"role": "user", "content": "hello"}]
    a = alice.chat.completions.with_raw_response.create(model="somaagent", messages=messages, user="chat")
    b = bob.chat.completions.with_raw_response.create(model="somaagent", messages=messages, user="chat")
    assert a.headers["x-soma-session-id"] != b.headers["x-soma-session-id"], "the same `user` of two members"
    again = alice.chat.completions.with_raw_response.create(model="somaagent", messages=messages, user="chat")
    assert again.headers["x-soma-session-id"] == a.headers["x-soma-session-id"]
    with pytest.raises(openai.NotFoundError):
        bob.chat.completions.create(
            model="somaagent",
            messages=messages,
            extra_headers={"X-Soma-Session-Id": a.headers["x-soma-session-id"]},
        )
    # An API key (an integration) sees the whole tenant, Alice's session included.
    key_client = sdk(live_system, tenant_key.key)
    joined = key_client.chat.completions.with_raw_response.create(
        model="somaagent",
        messages=messages,
        extra_headers={"X-Soma-Session-Id": a.headers["x-soma-session-id"]},
    )
    assert joined.headers["x-soma-session-id"] == a.headers["x-soma-session-id"]


def test_another_member_cannot_replay_a_members_idempotency_key(live_system, tenant_key) -> None:
    alice = sdk(live_system, member_token(live_system, tenant_key.tenant))
    bob = sdk(live_system, member_token(live_system, tenant_key.tenant))
    key = {"Idempotency-Key": uuid.uuid4().hex}
    messages: list[Any] = [{"role": "user", "content": "my secret plan"}]
    first = alice.chat.completions.create(model="somaagent", messages=messages, extra_headers=key)
    assert (
        alice.chat.completions.create(model="somaagent", messages=messages, extra_headers=key).id == first.id
    )
    with pytest.raises(openai.ConflictError) as failure:
        bob.chat.completions.create(model="somaagent", messages=messages, extra_headers=key)
    assert "another member" in body_of(failure)["message"]
    # The gateway's own door holds the same line.
    client = httpx.Client(base_url=live_system.url)
    token = member_token(live_system, tenant_key.tenant)
    answer = client.post(
        "/v1/session/message",
        json={"message": "my secret plan"},
        headers={**key, "Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 409, answer.text
    assert "session_id" not in answer.text
