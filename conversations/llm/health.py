"""Readiness of the language model: each distinct endpoint of the dialogue models answers.

Not required by default (``SOMA_READYZ_REQUIRED`` makes it so): with the model
down a web process still accepts messages (turns end with a retryable error).
Registered with ``somaagent.health`` in ``ConversationsConfig.ready()``.
"""

from __future__ import annotations

from typing import Any

import httpx
from django.conf import settings

from conversations.llm.resolve import model_targets
from somaagent.process_local import PerProcess

MAX_ENDPOINTS = 3


def _new_client() -> httpx.Client:
    timeout = settings.SOMA_OPS.readyz_timeout_seconds
    return httpx.Client(timeout=httpx.Timeout(timeout, connect=min(1.0, timeout)))


_client = PerProcess(_new_client)


def _http() -> httpx.Client:
    """A short-timeout client for probes, one per process."""
    return _client.get()


def _probe(base_url: str, api_key: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = _http().get(base_url.rstrip("/") + "/models", headers=headers)
    except httpx.HTTPError as exc:
        return {"url": base_url, "ok": False, "error": f"{exc.__class__.__name__}: {exc}"[:200]}
    # 404/405: an endpoint without a model list still answers; 401/403 and 5xx do not serve.
    ok = response.status_code < 400 or response.status_code in (404, 405)
    return {"url": base_url, "ok": ok, "status": response.status_code}


def llm_check() -> dict[str, Any]:
    """Each distinct endpoint of the dialogue models answers ``GET {base}/models``."""

    targets = model_targets()
    if not targets:
        return {"configured": False}
    seen: dict[str, str] = {}
    for target in targets:
        if target.base_url and target.base_url not in seen and len(seen) < MAX_ENDPOINTS:
            seen[target.base_url] = target.api_key
    endpoints = [_probe(url, key) for url, key in seen.items()]
    if not endpoints[0]["ok"]:
        raise RuntimeError(f"the primary model endpoint does not answer: {endpoints[0]}")
    return {"configured": True, "model": targets[0].model, "endpoints": endpoints}
