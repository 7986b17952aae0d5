"""PROD start-up refuses embedded defaults and insecure settings, naming every problem."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from somaagent.environment import ConfigurationError, check_production
from tests.live import ROOT

GOOD = {
    "DATABASE_URL": "postgres://u:p@db:5432/soma",
    "REDIS_URL": "redis://redis:6379/0",
    "SOMA_FERNET_KEYS": f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}",
    "DJANGO_SECRET_KEY": "k3J9-xq2Lr7Vb0Zs8Nd4Wm6Tf1Yh5Pc3Ga9Ue7Io2Rx4Ql8Kv",
    "ALLOWED_HOSTS": "soma.example.com",
    "DJANGO_DEBUG": "",
    "SOMA_OPA_URL": "",
    "SOMA_METRICS_TOKEN": "Jq5-Tr8vXw2zLm7Nb4Kd",
    "SOMA_BEHIND_TLS_PROXY": "1",
    "SOMA_HSTS_SECONDS": "",
}


@pytest.fixture
def prod_env(monkeypatch):
    for name, value in GOOD.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def problems(monkeypatch) -> str:
    with pytest.raises(ConfigurationError) as caught:
        check_production("PROD")
    return str(caught.value)


def test_a_sound_production_configuration_passes(prod_env):
    check_production("PROD")
    check_production("DEV")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"DJANGO_DEBUG": "1"}, ["DJANGO_DEBUG is on"]),
        (
            {"DJANGO_SECRET_KEY": "django-insecure-abcdefghijklmnopqrstuvwxyz0123456789"},
            ["default or placeholder"],
        ),
        ({"DJANGO_SECRET_KEY": "changeme"}, ["default or placeholder"]),
        ({"DJANGO_SECRET_KEY": "short-key"}, ["too short or too simple"]),
        ({"DJANGO_SECRET_KEY": "a" * 60}, ["too short or too simple"]),
        ({"DJANGO_SECRET_KEY": ""}, ["DJANGO_SECRET_KEY is not set"]),
        ({"SOMA_FERNET_KEYS": ""}, ["SOMA_FERNET_KEYS is not set"]),
        ({"SOMA_FERNET_KEYS": "not-a-key"}, ["key #1 is not a Fernet key"]),
        ({"SOMA_FERNET_KEYS": f"{Fernet.generate_key().decode()},bad"}, ["key #2 is not a Fernet key"]),
        ({"DATABASE_URL": ""}, ["DATABASE_URL is not set"]),
        ({"REDIS_URL": ""}, ["REDIS_URL is not set"]),
        ({"ALLOWED_HOSTS": ""}, ["ALLOWED_HOSTS is not set"]),
        ({"ALLOWED_HOSTS": "*"}, ["ALLOWED_HOSTS contains '*'"]),
        ({"SOMA_OPA_URL": "opa:8181"}, ["SOMA_OPA_URL must be an http(s) URL"]),
        ({"SOMA_METRICS_TOKEN": ""}, ["SOMA_METRICS_TOKEN is not set"]),
        ({"SOMA_METRICS_TOKEN": "short"}, ["SOMA_METRICS_TOKEN is too short"]),
        ({"SOMA_BEHIND_TLS_PROXY": ""}, ["SOMA_BEHIND_TLS_PROXY is not set", "X-Forwarded-Proto"]),
        ({"SOMA_HSTS_SECONDS": "0"}, ["SOMA_HSTS_SECONDS is below"]),
    ],
)
def test_each_problem_is_named(prod_env, changes, expected):
    for name, value in changes.items():
        prod_env.setenv(name, value)
    message = problems(prod_env)
    for text in expected:
        assert text in message


def test_all_problems_are_named_at_once(prod_env):
    for name in ("DATABASE_URL", "REDIS_URL", "SOMA_FERNET_KEYS", "DJANGO_SECRET_KEY"):
        prod_env.setenv(name, "")
    prod_env.setenv("DJANGO_DEBUG", "true")
    message = problems(prod_env)
    for text in ("DATABASE_URL", "REDIS_URL", "SOMA_FERNET_KEYS", "DJANGO_SECRET_KEY", "DJANGO_DEBUG"):
        assert text in message
    assert message.count("\n  - ") == 5


def test_manage_py_refuses_to_start_in_prod_with_insecure_settings():
    env = {k: v for k, v in os.environ.items() if k not in GOOD}
    env.update(
        {"SOMA_DEPLOYMENT_MODE": "PROD", "DJANGO_DEBUG": "1", "DJANGO_SECRET_KEY": "django-insecure-x"}
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    for text in (
        "refuses to start in PROD",
        "DJANGO_DEBUG is on",
        "default or placeholder",
        "SOMA_FERNET_KEYS",
    ):
        assert text in result.stderr, result.stderr[-2000:]
