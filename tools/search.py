"""The web search port and its remote adapter (a SearxNG-compatible JSON API).

There is no embedded adapter: without ``SOMA_SEARCH_URL`` the ``web_search``
tool is unavailable and never offered to the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from django.conf import settings

from somaagent.process_local import PerProcess, once_per_process
from somaagent.retry import http_tries
from tools.registry import ToolError, ToolTimeout

MAX_ATTEMPTS = 3
MAX_BACKOFF_SECONDS = 2.0


@dataclass(frozen=True)
class SearchHit:
    title: str
    url: str
    snippet: str


class SearchPort(Protocol):
    def search(self, *, query: str, max_results: int, timeout: float) -> list[SearchHit]: ...


_client = PerProcess(
    lambda: httpx.Client(timeout=httpx.Timeout(10.0), limits=httpx.Limits(max_connections=20))
)


def _http() -> httpx.Client:
    return _client.get()


class SearxngSearch:
    def __init__(self, base_url: str) -> None:
        base = base_url.rstrip("/")
        self.url = base if base.endswith("/search") else f"{base}/search"

    def search(self, *, query: str, max_results: int, timeout: float) -> list[SearchHit]:
        tries = http_tries(
            lambda limit: _http().get(
                self.url,
                params={"q": query, "format": "json"},
                headers={"Accept": "application/json"},
                timeout=limit,
            ),
            service="the search service",
            timeout=timeout,
            attempts=MAX_ATTEMPTS,
            base=0.25,
            cap=MAX_BACKOFF_SECONDS,
        )
        if tries.final is not None and not tries.error:
            return _hits(tries.final, max_results)
        if tries.final is not None:
            raise ToolError(tries.error, code="search_failed")
        if tries.out_of_time:
            raise ToolTimeout(f"Web search did not finish in {timeout:g} s: {tries.error}.")
        raise ToolError(f"Web search failed: {tries.error}.", code="search_failed")


def _hits(response: httpx.Response, max_results: int) -> list[SearchHit]:
    try:
        doc: Any = response.json()
    except ValueError as exc:
        raise ToolError("The search service sent something that is not JSON.", code="search_failed") from exc
    results = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(results, list):
        raise ToolError("The search service's answer has no results list.", code="search_failed")
    hits = []
    for item in results:
        if isinstance(item, dict) and item.get("url"):
            hits.append(
                SearchHit(
                    title=str(item.get("title") or "")[:300],
                    url=str(item["url"])[:2000],
                    snippet=str(item.get("content") or "")[:1000],
                )
            )
        if len(hits) >= max_results:
            break
    return hits


@once_per_process
def search_port() -> SearchPort | None:
    url = settings.SOMA.tools.search_url
    return SearxngSearch(url) if url else None
