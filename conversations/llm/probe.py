"""Test a model endpoint: one tiny non-streaming completion, timed (admin's "test connection").

A completion rather than ``GET /models`` because it proves what a turn needs:
the URL, the credential and the model name all work. It asks for one token.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
from cryptography.fernet import InvalidToken

from conversations.llm.openai_compat import http_client, http_error
from conversations.llm.port import ModelTarget
from conversations.llm.resolve import target_of
from somaagent.models import ModelProfile

PROBE_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=5.0)


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    latency_ms: int
    detail: str
    code: str = ""


def probe_target(target: ModelTarget) -> ProbeResult:
    url = target.base_url.rstrip("/") + "/chat/completions"
    headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
    body = {
        **target.extra,
        "model": target.model,
        "messages": [{"role": "user", "content": "Reply with the single word OK."}],
        "max_tokens": 1,
        "stream": False,
    }
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        response = http_client().post(url, json=body, headers=headers, timeout=PROBE_TIMEOUT)
    except httpx.TimeoutException as exc:
        return ProbeResult(False, elapsed(), f"timed out ({exc.__class__.__name__})", "llm_timeout")
    except httpx.HTTPError as exc:
        return ProbeResult(False, elapsed(), f"could not connect to {url}: {exc!r}", "llm_unreachable")
    latency = elapsed()
    if response.status_code >= 400:
        error = http_error(response)
        return ProbeResult(False, latency, error.message, error.code)
    try:
        doc = response.json()
        model = doc.get("model") or target.model
        choices = doc.get("choices") or []
    except (ValueError, AttributeError):
        return ProbeResult(False, latency, "the answer is not an OpenAI chat completion", "llm_bad_response")
    if not isinstance(choices, list) or not choices:
        return ProbeResult(False, latency, "the answer has no choices", "llm_bad_response")
    return ProbeResult(True, latency, f"model {model} answered")


def model_profile_probe(*, profile: ModelProfile) -> ProbeResult:
    """Probe a profile as a turn would call it (its credential decrypted)."""
    try:
        target = target_of(profile)
    except InvalidToken:
        return ProbeResult(
            False, 0, "the credential cannot be decrypted with SOMA_FERNET_KEYS", "bad_credential"
        )
    return probe_target(target)
