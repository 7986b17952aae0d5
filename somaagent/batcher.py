"""Work that request threads hand over and one daemon thread per process does in batches.

``Batcher.add`` is a list append under a lock: the request thread goes on at
once. The process's thread (started on first use, again in a forked child)
takes everything pending and calls ``handle(items)`` once — right away, or
after ``interval`` seconds so that more items join the batch. Under load a
batch holds many items, so one round trip (one Redis pipeline, one UPDATE)
serves many requests. ``flush`` does the pending work on the calling thread,
after any batch already in progress (tests, benchmarks). Items still pending
when a process exits or dies are lost (at exit the database or broker may be
gone already): use it only for work that something else redoes (the outbox
sweep).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from django.db import connections

log = logging.getLogger(__name__)

T = TypeVar("T")


class Batcher(Generic[T]):
    def __init__(self, name: str, handle: Callable[[list[T]], object], *, interval: float = 0.0) -> None:
        self.name = name
        self.interval = interval
        self._handle = handle
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._items: list[T] = []
        self._wake = threading.Condition()
        self._handling = threading.Lock()  # held while a batch is being handled
        self._thread_pid = 0

    def add(self, item: T) -> None:
        with self._wake:
            self._items.append(item)
            if self._thread_pid != os.getpid():
                self._thread_pid = os.getpid()
                threading.Thread(target=self._run, name=self.name, daemon=True).start()
            self._wake.notify()

    def flush(self) -> int:
        """Handle what is pending now, on this thread; returns how many items it handled."""
        with self._handling:
            with self._wake:
                items, self._items = self._items, []
            if items:
                self._handle(items)
            return len(items)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._items:
                    self._wake.wait()
            if self.interval:
                time.sleep(self.interval)
            try:
                self.flush()
            except Exception:  # the thread must survive; what failed is redone elsewhere
                log.exception("%s: a batch failed", self.name)
            finally:
                connections.close_all()  # this thread's connections go back to the pool
