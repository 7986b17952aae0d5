"""A value built once per process, on first use, and built again in a forked child.

HTTP clients, Redis clients and thread pools must not cross a fork (Celery's
prefork children inherit the parent's memory), and building them is costly
(an ``httpx.Client`` builds an SSL context), so each process makes its own once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerProcess(Generic[T]):
    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._value: tuple[int, T] | None = None

    def get(self) -> T:
        pid = os.getpid()
        current = self._value
        if current is None or current[0] != pid:
            with self._lock:
                current = self._value
                if current is None or current[0] != pid:
                    current = (pid, self._factory())
                    self._value = current
        return current[1]
