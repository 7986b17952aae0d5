"""PROD mode against a real ASGI server: HTTPS-only cookies, HSTS behind a TLS proxy, operator
endpoints behind the metrics token, /readyz without exception text (issue 14, item 11)."""

from __future__ import annotations

import dataclasses

import httpx
import pytest
from cryptography.fernet import Fernet
from django.conf import settings

from somaagent.metrics.exposition import serve_port
from tests.live import LiveSystem, free_port, wait_until

TOKEN = "ops-token-Xq7Lr2Vb9Zs4Nd8W"


def prod_env() -> dict[str, str]:
    return {
        "SOMA_DEPLOYMENT_MODE": "PROD",
        # PROD refuses embedded defaults: name the ones this test run uses.
        **(
            {"DATABASE_URL": f"sqlite:///{settings.DATABASES['default']['NAME']}"}
            if settings.IS_SQLITE
            else {}
        ),
        "REDIS_URL": settings.REDIS_URL,
        "SOMA_FERNET_KEYS": Fernet.generate_key().decode(),
        "DJANGO_SECRET_KEY": "k3J9-xq2Lr7Vb0Zs8Nd4Wm6Tf1Yh5Pc3Ga9Ue7Io2Rx4Ql8Kv",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_DEBUG": "",
        "SOMA_METRICS_TOKEN": TOKEN,
        "SOMA_BEHIND_TLS_PROXY": "1",
        # A required check that fails with an exception whose text must not be public.
        "SOMA_LLM_BASE_URL": "http://127.0.0.1:9/v1",
        "SOMA_READYZ_REQUIRED": "database,redis,broker,llm",
        "SOMA_READYZ_CACHE_SECONDS": "0",
    }


@pytest.fixture
def prod_web(live_db):
    system = LiveSystem(env=prod_env())
    try:
        system.start_web()
        yield system
    finally:
        system.stop()


pytestmark = pytest.mark.integration


def test_prod_readyz_shows_no_exception_text_without_the_token(prod_web) -> None:
    public = httpx.get(f"{prod_web.url}/readyz", timeout=20)
    assert public.status_code == 503  # the unreachable model endpoint is required here
    body = public.json()
    assert body["status"] == "not_ready" and body["checks"]["llm"]["ok"] is False
    text = public.text
    assert "error" not in text and "Error" not in text and "127.0.0.1:9" not in text, text
    assert "vendor" not in text and "transport" not in text
    full = httpx.get(f"{prod_web.url}/readyz", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=20)
    assert full.status_code == 503 and "127.0.0.1:9" in full.json()["checks"]["llm"]["error"]


def test_prod_metrics_need_the_token(prod_web) -> None:
    assert httpx.get(f"{prod_web.url}/metrics", timeout=20).status_code == 401
    ok = httpx.get(f"{prod_web.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=20)
    assert ok.status_code == 200 and "soma_" in ok.text


def test_prod_cookies_are_https_only_and_hsts_is_sent_behind_the_tls_proxy(prod_web) -> None:
    behind_proxy = httpx.get(f"{prod_web.url}/login/", headers={"X-Forwarded-Proto": "https"}, timeout=20)
    assert behind_proxy.status_code == 200
    hsts = behind_proxy.headers.get("Strict-Transport-Security", "")
    assert hsts.startswith("max-age=31536000"), behind_proxy.headers
    csrf_cookie = next(c for c in behind_proxy.headers.get_list("set-cookie") if c.startswith("csrftoken="))
    assert "Secure" in csrf_cookie and "HttpOnly" not in csrf_cookie
    plain = httpx.get(f"{prod_web.url}/login/", timeout=20)  # no proxy header: not HTTPS, no HSTS
    assert "Strict-Transport-Security" not in plain.headers


# --- a worker's metrics port ------------------------------------------------------------------


def _ops(**changes):
    return dataclasses.replace(settings.SOMA_OPS, **changes)


def test_the_worker_metrics_port_asks_for_the_token(settings) -> None:
    settings.SOMA_OPS = _ops(metrics_token=TOKEN, metrics_addr="127.0.0.1")
    port = free_port()
    assert serve_port(port) is True
    url = f"http://127.0.0.1:{port}/metrics"
    wait_until(lambda: httpx.get(url, timeout=2).status_code == 401, timeout=10, what="the metrics port")
    ok = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert ok.status_code == 200 and "# HELP" in ok.text


def test_the_worker_metrics_port_binds_loopback_by_default_and_never_all_interfaces_unguarded(
    settings,
) -> None:
    assert settings.SOMA_OPS.metrics_addr == "127.0.0.1"
    settings.SOMA_OPS = _ops(metrics_token="", metrics_addr="0.0.0.0")
    assert serve_port(free_port()) is False
