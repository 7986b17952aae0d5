"""Embeddings: the port and its remote adapter, an OpenAI-compatible ``/v1/embeddings`` endpoint.

There is no embedded adapter: without ``SOMA_EMBEDDINGS_URL`` (``embedder()`` is None)
documents are searched by full text only. With it, chunks are embedded while a
document is ingested and each search embeds its query (documents/search.py).

Vectors come back as float32 ``array``s scaled to length 1, so that a dot product is
their cosine. The endpoint's dimensions are whatever its first answer has; a later
answer of another size is an error (a changed model behind the same URL). Requests
are bounded by a deadline and retried with the project's backoff (``somaagent.retry``)
on 408, 429, 5xx and transport errors; any other answer is final.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from typing import Any, Protocol

import httpx

from documents.conf import documents_settings
from somaagent.process_local import PerProcess, once_per_process
from somaagent.retry import http_tries

MAX_ATTEMPTS = 4
MAX_BACKOFF_SECONDS = 10.0
RETRIED_STATUSES = frozenset({408, 429})

Vector = array  # array("f"), length 1


class EmbeddingError(Exception):
    """The endpoint could not embed the texts; the message says why, for a person to read."""


class EmbeddingsPort(Protocol):
    model: str

    def embed(self, texts: Sequence[str], *, timeout: float) -> list[Vector]: ...


_client = PerProcess(
    lambda: httpx.Client(timeout=httpx.Timeout(30.0), limits=httpx.Limits(max_connections=20))
)


def endpoint_url(base: str) -> str:
    """``…/v1/embeddings`` from the configured URL, which may name it or its ``/v1`` base."""
    base = base.rstrip("/")
    if base.endswith("/embeddings"):
        return base
    return f"{base}/embeddings" if base.endswith("/v1") else f"{base}/v1/embeddings"


class OpenAIEmbeddings:
    def __init__(self, *, url: str, model: str, api_key: str = "") -> None:
        self.url = endpoint_url(url)
        self.model = model
        self._headers = {"Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self.dimensions: int | None = None  # learnt from the first answer

    def embed(self, texts: Sequence[str], *, timeout: float) -> list[Vector]:
        """One vector per text, in order; ``EmbeddingError`` when that fails within ``timeout``."""
        if not texts:
            return []
        body = {"model": self.model, "input": list(texts), "encoding_format": "float"}
        tries = http_tries(
            lambda limit: _client.get().post(self.url, json=body, headers=self._headers, timeout=limit),
            service="the embeddings service",
            timeout=timeout,
            attempts=MAX_ATTEMPTS,
            base=0.5,
            cap=MAX_BACKOFF_SECONDS,
            retried=RETRIED_STATUSES,
        )
        if tries.final is None:
            raise EmbeddingError(f"{_capital(tries.error)} (after {timeout:g} s).")
        if tries.error:
            raise EmbeddingError(f"{_capital(tries.error)}.")
        return self._vectors(tries.final, len(texts))

    def _vectors(self, response: httpx.Response, count: int) -> list[Vector]:
        try:
            doc: Any = response.json()
        except ValueError as exc:
            raise EmbeddingError("The embeddings service sent something that is not JSON.") from exc
        data = doc.get("data") if isinstance(doc, dict) else None
        if not isinstance(data, list) or len(data) != count:
            raise EmbeddingError(f"The embeddings service did not send {count} embeddings.")
        items = [item if isinstance(item, dict) else {} for item in data]
        order = [item.get("index", position) for position, item in enumerate(items)]
        if any(type(i) is not int for i in order) or sorted(order) != list(range(count)):
            raise EmbeddingError("The embeddings service numbered its embeddings wrongly.")
        by_index = dict(zip(order, items, strict=True))
        vectors = [_unit(by_index[i].get("embedding")) for i in range(count)]
        sizes = {len(v) for v in vectors}
        size = sizes.pop()
        if sizes or size == 0:
            raise EmbeddingError("The embeddings service sent embeddings of different sizes.")
        if self.dimensions is None:
            self.dimensions = size
        elif size != self.dimensions:
            raise EmbeddingError(
                f"The embeddings service sent {size} dimensions where it sent {self.dimensions} before."
            )
        return vectors


def _unit(values: object) -> Vector:
    """The embedding as float32, scaled to length 1 (all zeros stays all zeros)."""
    if not isinstance(values, list) or not values:
        raise EmbeddingError("The embeddings service sent an embedding that is not a list of numbers.")
    try:
        floats = [float(x) for x in values]
    except (TypeError, ValueError) as exc:
        raise EmbeddingError("The embeddings service sent an embedding that is not numbers.") from exc
    norm = math.sqrt(math.fsum(x * x for x in floats))
    if not math.isfinite(norm):
        raise EmbeddingError("The embeddings service sent an embedding that is not finite.")
    return array("f", [x / norm for x in floats] if norm else floats)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


@once_per_process
def embedder() -> EmbeddingsPort | None:
    """The configured embeddings endpoint, or None (full-text search only)."""
    cfg = documents_settings().embeddings
    return OpenAIEmbeddings(url=cfg.url, model=cfg.model, api_key=cfg.api_key) if cfg.url else None
