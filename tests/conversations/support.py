"""Helpers shared by the conversation tests: sending, reading outcomes, checking cursors."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from conversations.models import SessionEvent, Turn
from tests.live import TERMINAL, LiveSystem, read_stream

TERMINAL_TYPES = TERMINAL


def send(system: LiveSystem, key: str, message: str, **extra: Any) -> dict[str, Any]:
    with system.client(key) as c:
        r = c.post("/v1/session/message", json={"message": message, **extra})
    assert r.status_code == 202, r.text
    return r.json()


def answered(system: LiveSystem, key: str, sid: str, reply_to: str) -> dict[str, Any]:
    """The final event of the reply (the newest one) to the message ``reply_to``."""
    events = read_stream(
        system,
        key,
        sid,
        until=lambda e: e["type"] == "assistant.final" and e["data"].get("reply_to") == reply_to,
    )
    return events[-1]


def base_and_kept(system: LiveSystem, key: str, tag: str) -> tuple[dict[str, Any], ...]:
    """A chat of two answered messages, ``{tag} base`` and ``{tag} kept`` (the branch an edit of
    the second leaves behind): the first's acceptance, its reply, the second's, its reply."""
    root = send(system, key, f"[[reply=base]] {tag} base")
    sid = root["session_id"]
    base = answered(system, key, sid, root["event_id"])
    kept = send(system, key, f"[[reply=kept]] {tag} kept", session_id=sid)
    return root, base, kept, answered(system, key, sid, kept["event_id"])


def persisted_types(session_id: str) -> list[str]:
    return list(
        SessionEvent.objects.filter(session_id=session_id).order_by("seq").values_list("type", flat=True)
    )


def terminal_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] in TERMINAL_TYPES]


def assert_gap_free(events: list[dict[str, Any]], *, start: int = 1) -> None:
    """Cursors are consecutive from ``start``: no gap, no duplicate, in order."""
    cursors = [int(e["id"]) for e in events]
    assert cursors == list(range(start, start + len(cursors))), f"cursors not gap-free: {cursors}"


def turn_status(turn_id: str) -> str:
    return str(Turn.objects.values_list("status", flat=True).get(pk=turn_id))


@contextmanager
def own_system(env: dict[str, str], *, beat: bool = True, **options: Any) -> Iterator[LiveSystem]:
    """A LiveSystem with settings of its own, alone in sweeping the shared test database.

    Its own Redis key prefix keeps its queues (on a Redis broker), stream
    buffers and cache apart from the session-wide system's.
    """
    prefix = f"{os.environ['SOMA_REDIS_PREFIX']}{uuid.uuid4().hex[:8]}:"
    system = LiveSystem(env={"SOMA_REDIS_PREFIX": prefix, **env}, **options)
    try:
        system.start(beat=beat)
        with system.solo():
            yield system
    except BaseException:
        print(system.logs())
        raise
    finally:
        system.stop()


def stub_env(stub_url: str, **extra: str) -> dict[str, str]:
    return {"SOMA_LLM_BASE_URL": f"{stub_url}/v1", "SOMA_LLM_MODEL": "stub-model", **extra}


class ConnectionProbePort:
    """A model that answers ``text`` and records, while it writes, whether the calling thread
    holds a database connection (it should not: a slow model must not hold the pool)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.held: list[bool] = []

    def open_stream(self, request: Any) -> Any:
        from django.db import connections

        from conversations.llm.port import ChatChunk

        probe = self

        class Stream:
            def __iter__(self) -> Iterator[Any]:
                probe.held.append(
                    any(c.connection is not None for c in connections.all(initialized_only=True))
                )
                yield ChatChunk(text=probe.text)

            def close(self) -> None:
                pass

        return Stream()
