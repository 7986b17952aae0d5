"""Remote memory adapter: a SomaBrain-compatible HTTP service (SPEC §9).

- ``POST {url}/memory/remember`` ``{tenant, namespace, key, value, tags?, universe?}``
- ``POST {url}/memory/recall`` ``{tenant, namespace, query, top_k, session_id?}``
  → ``{"results": [{"score", "payload", ...}]}``
- ``POST {url}/memory/forget`` ``{tenant, namespace, session_id, key}`` → ``{"forgotten": n}``
  (our extension for deleted sessions; the service must treat a repeat as a no-op)

Bearer ``SOMA_MEMORY_TOKEN``. One pooled httpx client per process with explicit
timeouts. 5xx, 408, 429 and connection errors are ``MemoryUnavailable``
(with ``Retry-After`` when given); other 4xx are ``MemoryRejected``. This adapter
does not retry by itself: the write outbox retries writes, recall gives up.
"""

from __future__ import annotations

from typing import Any

import httpx

from memory.conf import MemorySettings
from memory.port import Forget, MemoryHit, MemoryRejected, MemoryUnavailable, RecallQuery, Remember
from somaagent.db_hold import db_release
from somaagent.process_local import PerProcess
from somaagent.retry import parse_retry_after

RETRYABLE_STATUS = frozenset({408, 429})


class RemoteMemory:
    name = "remote"

    def __init__(self, config: MemorySettings) -> None:
        self.config = config
        self.base_url = config.url.rstrip("/")
        self._client = PerProcess(self._new_client)

    def _new_client(self) -> httpx.Client:
        timeout = httpx.Timeout(
            connect=self.config.connect_timeout,
            read=self.config.timeout,
            write=self.config.timeout,
            pool=self.config.timeout,
        )
        headers = {"Accept": "application/json"}
        if self.config.token:
            headers["Authorization"] = f"Bearer {self.config.token}"
        return httpx.Client(
            timeout=timeout,
            headers=headers,
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=10),
        )

    def client(self) -> httpx.Client:
        """One client per process (rebuilt after a fork): building one costs an SSL context."""
        return self._client.get()

    def _post(self, path: str, body: dict[str, Any], *, timeout: float | None = None) -> Any:
        url = f"{self.base_url}{path}"
        kwargs: dict[str, Any] = {"json": body}
        if timeout is not None:
            kwargs["timeout"] = httpx.Timeout(timeout, connect=min(timeout, self.config.connect_timeout))
        db_release()  # a slow service must not hold this thread's pooled database connection
        try:
            response = self.client().post(url, **kwargs)
        except httpx.TimeoutException as exc:
            raise MemoryUnavailable(f"memory service timed out ({exc.__class__.__name__}) on {path}") from exc
        except httpx.TransportError as exc:  # refused, reset, dropped mid-response
            raise MemoryUnavailable(f"memory service unreachable on {path}: {exc!r}") from exc
        status = response.status_code
        if status >= 500 or status in RETRYABLE_STATUS:
            raise MemoryUnavailable(
                f"memory service answered HTTP {status} on {path}: {response.text[:200]}",
                status=status,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        if status >= 400:
            raise MemoryRejected(
                f"memory service rejected {path} with HTTP {status}: {response.text[:300]}", status=status
            )
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError as exc:
            raise MemoryUnavailable(f"memory service sent a body that is not JSON on {path}") from exc

    def remember(self, item: Remember) -> None:
        body: dict[str, Any] = {
            "tenant": item.tenant,
            "namespace": item.namespace,
            "key": item.key,
            "value": item.value,
        }
        if item.tags:
            body["tags"] = list(item.tags)
        if self.config.universe:
            body["universe"] = self.config.universe
        self._post("/memory/remember", body)

    def recall(self, query: RecallQuery) -> list[MemoryHit]:
        body: dict[str, Any] = {
            "tenant": query.tenant,
            "namespace": query.namespace,
            "query": query.query,
            "top_k": query.top_k,
        }
        if query.session_id:
            body["session_id"] = query.session_id
        doc = self._post("/memory/recall", body, timeout=query.timeout)
        results = doc.get("results") if isinstance(doc, dict) else None
        hits: list[MemoryHit] = []
        for result in results if isinstance(results, list) else []:
            if not isinstance(result, dict):
                continue
            payload = result.get("payload")
            if isinstance(payload, str):
                payload = {"text": payload}
            if not isinstance(payload, dict):
                continue
            try:
                score = float(result.get("score") or 0.0)
            except (TypeError, ValueError):
                score = 0.0
            key = str(result.get("key") or payload.get("key") or "")
            hits.append(MemoryHit(key=key, score=score, payload=payload))
        hits.sort(key=lambda h: h.score, reverse=True)
        return hits[: query.top_k]

    def forget(self, request: Forget) -> int:
        doc = self._post(
            "/memory/forget",
            {
                "tenant": request.tenant,
                "namespace": request.namespace,
                "session_id": request.session_id,
                "key": request.key,
            },
        )
        try:
            return int(doc.get("forgotten", 0)) if isinstance(doc, dict) else 0
        except (TypeError, ValueError):
            return 0
