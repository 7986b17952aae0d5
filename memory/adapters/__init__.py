"""The memory port's adapter for this process, chosen once from settings."""

from __future__ import annotations

import threading

from django.conf import settings

from memory.port import MemoryPort

_lock = threading.Lock()
_port: MemoryPort | None = None


def build_port() -> MemoryPort:
    config = settings.SOMA.memory
    if config.remote:
        from memory.adapters.remote import RemoteMemory

        return RemoteMemory(config)
    from memory.adapters.embedded import EmbeddedMemory

    return EmbeddedMemory()


def memory_port() -> MemoryPort:
    """The remote SomaBrain-compatible service if ``SOMA_MEMORY_URL`` is set, else the embedded store."""
    global _port
    if _port is None:
        with _lock:
            if _port is None:
                _port = build_port()
    return _port
