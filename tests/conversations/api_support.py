"""In-process API calls for the bad-input tests: a client per key, row counts, the error shape."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.test import Client

from conversations.models import Attachment, IdempotencyRecord, Session, SessionEvent, Turn
from somaagent.models import DeadLetter, OutboxMessage


def row_counts() -> dict[str, int]:
    """Every table an API request could write to."""
    return {
        "sessions": Session.objects.count(),
        "events": SessionEvent.objects.count(),
        "turns": Turn.objects.count(),
        "outbox": OutboxMessage.objects.count(),
        "idempotency": IdempotencyRecord.objects.count(),
        "dlq": DeadLetter.objects.count(),
        "attachments": Attachment.objects.count(),
    }


def session_state() -> list[tuple[Any, ...]]:
    """What PATCH/DELETE/cancel could change, beyond counts."""
    sessions = list(Session.objects.order_by("pk").values_list("pk", "title", "last_seq"))
    turns = list(Turn.objects.order_by("pk").values_list("pk", "status", "cancel_requested"))
    return [*sessions, *turns]


@dataclass
class Api:
    """A Django test client that sends a Bearer key (or ``auth`` verbatim)."""

    key: str | None = None
    auth: str | None = None

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.auth is not None:
            headers["Authorization"] = self.auth
        elif self.key is not None:
            headers["Authorization"] = f"Bearer {self.key}"
        return headers

    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        raw: bytes | str | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Any:
        client = Client()
        data: Any = raw if raw is not None else (json.dumps(json_body) if json_body is not None else None)
        kwargs: dict[str, Any] = {"headers": self._headers(headers)}
        if method == "get":
            pass  # a GET has no body
        elif data is not None or method in ("post", "patch", "put"):
            kwargs.update(data=data if data is not None else "", content_type=content_type)
        return getattr(client, method)(path, **kwargs)

    def post_message(self, body: Any = None, **kwargs: Any) -> Any:
        return self.call("post", "/v1/session/message", json_body=body, **kwargs)


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The SPEC §6 error shape with the given status (and code)."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    if code is not None:
        assert body["error"]["code"] == code, body
    return dict(body["error"])
