"""Document settings, read from the environment once per process (``documents_settings()``)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from documents.extract.run import ParseLimits
from somaagent.environment import env, env_float, env_int

# The ingestion task's hard time limit (tasks.py): past it Celery has killed the attempt, so a
# document still "processing" with no progress for longer has no live attempt left.
INGEST_TIME_LIMIT = 600


@dataclass(frozen=True)
class EmbeddingSettings:
    url: str  # an OpenAI-compatible /v1/embeddings endpoint; "" = no embeddings (full-text only)
    model: str
    api_key: str
    batch_size: int  # texts per request while ingesting
    timeout: float  # one request while ingesting, seconds
    min_similarity: float  # cosine below which a chunk is not a vector match
    cache_mb: int  # collections' vectors kept by each process, at most


@dataclass(frozen=True)
class DocumentSettings:
    max_bytes: int  # one uploaded file
    parse: ParseLimits  # the parser subprocess
    context_chunks: int  # chunks put in a turn's prompt, at most
    context_chars: int  # their total size, at most
    search_timeout: float  # one search, seconds
    stuck_seconds: float  # "processing" without progress this long: the sweep takes it back
    embeddings: EmbeddingSettings


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
        stuck_seconds=env_float("SOMA_DOCUMENTS_STUCK_SECONDS", 660.0),
        embeddings=EmbeddingSettings(
            url=env("SOMA_EMBEDDINGS_URL"),
            model=env("SOMA_EMBEDDINGS_MODEL", "text-embedding-3-small"),
            api_key=env("SOMA_EMBEDDINGS_API_KEY"),
            batch_size=max(1, env_int("SOMA_EMBEDDINGS_BATCH_SIZE", 64)),
            timeout=env_float("SOMA_EMBEDDINGS_TIMEOUT", 30.0),
            min_similarity=env_float("SOMA_EMBEDDINGS_MIN_SIMILARITY", 0.25),
            cache_mb=env_int("SOMA_EMBEDDINGS_CACHE_MB", 128),
        ),
    )
