"""The admin's "test connection" action on model profiles, against a real stub endpoint."""

from __future__ import annotations

import uuid

import httpx
import pytest

from conversations.llm.port import ModelTarget
from conversations.llm.probe import model_profile_probe, probe_target
from somaagent.models import LlmCredential, ModelProfile
from somaagent.secrets import encrypt
from tests.live import free_port


def url(stub_url: str, directives: str = "") -> str:
    return f"{stub_url}/d/key={uuid.uuid4().hex[:8]}{',' + directives if directives else ''}/v1"


def test_a_working_endpoint_reports_ok_and_latency(llm_stub) -> None:
    result = probe_target(ModelTarget(base_url=url(llm_stub.url), model="stub-model"))
    assert result.ok and result.latency_ms >= 0 and "stub-model" in result.detail


@pytest.mark.parametrize(
    ("directives", "code"),
    [("status=401", "llm_auth_failed"), ("status=404", "llm_rejected"), ("status=503", "llm_unavailable")],
)
def test_errors_are_reported_with_their_code(llm_stub, directives: str, code: str) -> None:
    result = probe_target(ModelTarget(base_url=url(llm_stub.url, directives), model="m"))
    assert not result.ok and result.code == code and "HTTP" in result.detail


def test_an_unreachable_endpoint_is_reported() -> None:
    result = probe_target(ModelTarget(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m"))
    assert not result.ok and result.code == "llm_unreachable"


@pytest.mark.django_db
def test_the_profile_credential_is_sent(llm_stub) -> None:
    credential = LlmCredential.objects.create(name="c", secret_encrypted=encrypt("sk-secret"))
    profile = ModelProfile.objects.create(
        role="dialogue", model="stub-model", base_url=url(llm_stub.url), credential=credential
    )
    assert model_profile_probe(profile=profile).ok
    log = httpx.get(f"{llm_stub.url}/_log").json()
    assert [
        e["authorization"] for e in log if e["path"].startswith(profile.base_url[len(llm_stub.url) :])
    ] == ["Bearer sk-secret"]


@pytest.mark.django_db
def test_admin_action_reports_each_profile(admin_client, llm_stub) -> None:
    good = ModelProfile.objects.create(role="dialogue", model="stub-model", base_url=url(llm_stub.url))
    bad = ModelProfile.objects.create(
        role="escalation", model="big", base_url=url(llm_stub.url, "status=401")
    )
    response = admin_client.post(
        "/admin/somaagent/modelprofile/",
        {"action": "test_connection", "_selected_action": [good.pk, bad.pk]},
        follow=True,
    )
    assert response.status_code == 200
    texts = [str(m) for m in response.context["messages"]]
    assert any(t.startswith(f"{good}") and ": OK in " in t and " ms" in t for t in texts), texts
    assert any(
        t.startswith(f"{bad}") and "FAILED (llm_auth_failed)" in t and "HTTP 401" in t for t in texts
    ), texts
