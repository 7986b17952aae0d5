"""The Celery application (project wiring); its settings live in the top-level celeryconfig.py."""

from __future__ import annotations

import os
import sys

from celery import Celery

from somaagent.project.celery_signals import celery_signals_connect
from somaagent.project.flower_auth import check_flower_start

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "somaagent.settings")
check_flower_start(sys.argv)  # Flower outside DEV only behind a real password

app = Celery("somaagent")
app.config_from_object("celeryconfig")
app.autodiscover_tasks(["somaagent", "conversations", "tools", "memory", "documents"])
celery_signals_connect()  # task metrics, the request id across the broker, database connections
