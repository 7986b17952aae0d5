"""The Celery application; its settings live in the top-level celeryconfig.py."""

from __future__ import annotations

import os
import sys

from celery import Celery
from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections

from somaagent.project.flower_auth import check_flower_start

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "somaagent.settings")
check_flower_start(sys.argv)  # Flower outside DEV only behind a real password

app = Celery("somaagent")
app.config_from_object("celeryconfig")
app.autodiscover_tasks(["somaagent", "conversations", "tools", "memory", "documents"])

import somaagent.project.celery_signals  # noqa: E402, F401  (metrics, request id, metrics files)
from somaagent.db_hold import db_release  # noqa: E402


@task_prerun.connect
def _check_database_connections(**_: object) -> None:
    """Close a broken or too old connection before a task (connections are reused: celeryconfig)."""
    close_old_connections()


@task_postrun.connect
def _give_back_database_connections(**_: object) -> None:
    """A task thread holds no connection between tasks: hundreds of threads share a small pool."""
    db_release()
