"""The Celery application; its settings live in the top-level celeryconfig.py."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "somaagent.settings")

app = Celery("somaagent")
app.config_from_object("celeryconfig")
app.autodiscover_tasks(["somaagent", "conversations", "tools", "memory"])

import somaagent.celery_signals  # noqa: E402, F401  (metrics, request id, metrics files)
