"""Fixtures for the tools package (the stub web and the live system are in tests/conftest.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.test import override_settings

MAIN_QUEUES = "conversation,memory,default"
TOOL_QUEUES = "tools"


@contextmanager
def tool_settings(**changes: Any) -> Iterator[None]:
    """Override fields of ``settings.SOMA.tools`` in this process."""
    soma = dataclasses.replace(settings.SOMA, tools=dataclasses.replace(settings.SOMA.tools, **changes))
    with override_settings(SOMA=soma):
        yield
