"""The memory port's adapter for this process, chosen once from settings."""

from __future__ import annotations

from django.conf import settings

from memory.port import MemoryPort
from somaagent.process_local import once_per_process


def build_port() -> MemoryPort:
    config = settings.SOMA.memory
    if config.remote:
        from memory.adapters.remote import RemoteMemory

        return RemoteMemory(config)
    from memory.adapters.embedded import EmbeddedMemory

    return EmbeddedMemory()


@once_per_process
def memory_port() -> MemoryPort:
    """The remote SomaBrain-compatible service if ``SOMA_MEMORY_URL`` is set, else the embedded store."""
    return build_port()
