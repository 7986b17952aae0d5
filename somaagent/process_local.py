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


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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

    def reset(self) -> None:
        """Forget the value: the next ``get`` builds it again (tests that change settings)."""
        with self._lock:
            self._value = None


def once_per_process(factory: Callable[[], T]) -> _Once[T]:
    """Decorate a function without arguments whose value is costly to build (a policy
    engine that compiles its modules, a store that opens files): like
    ``functools.lru_cache(maxsize=1)``, but single-flight — a burst of first requests builds it
    once while the others wait, instead of every thread building its own — and built again in
    a forked child. ``cache_clear()`` forgets it, as with ``lru_cache``."""
    return _Once(factory)


class _Once(Generic[T]):
    def __init__(self, factory: Callable[[], T]) -> None:
        self._held = PerProcess(factory)
        self.__wrapped__ = factory
        self.__doc__ = factory.__doc__

    def __call__(self) -> T:
        return self._held.get()

    def cache_clear(self) -> None:
        self._held.reset()
