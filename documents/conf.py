"""Document settings, read from the environment once per process (``documents_settings()``)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from documents.extract.run import ParseLimits
from somaagent.environment import env_float, env_int


@dataclass(frozen=True)
class DocumentSettings:
    max_bytes: int  # one uploaded file
    parse: ParseLimits  # the parser subprocess
    context_chunks: int  # chunks put in a turn's prompt, at most
    context_chars: int  # their total size, at most
    search_timeout: float  # one search, seconds


@functools.cache
def documents_settings() -> DocumentSettings:
    return DocumentSettings(
        max_bytes=env_int("SOMA_DOCUMENTS_MAX_BYTES", 20 * 1024 * 1024),
        parse=ParseLimits(
            cpu_seconds=env_int("SOMA_DOCUMENTS_PARSE_CPU_SECONDS", 30),
            wall_seconds=env_float("SOMA_DOCUMENTS_PARSE_WALL_SECONDS", 60.0),
            memory_bytes=env_int("SOMA_DOCUMENTS_PARSE_MEMORY_MB", 768) * 1024 * 1024,
            max_chars=env_int("SOMA_DOCUMENTS_MAX_TEXT_CHARS", 5_000_000),
        ),
        context_chunks=env_int("SOMA_DOCUMENTS_CONTEXT_CHUNKS", 5),
        context_chars=env_int("SOMA_DOCUMENTS_CONTEXT_CHARS", 5000),
        search_timeout=env_float("SOMA_DOCUMENTS_SEARCH_TIMEOUT", 2.0),
    )
