"""Redis goes away while a reply streams to an open SSE stream, Redis not being the broker.

Redis of the test's own holds the cache, the stream buffers, the rate limits and the
stream cap; the broker is another (the test run's). When Redis stops mid-reply the
open stream sends what the database holds and ends with one last ``error`` frame
(503 ``stream_unavailable``): a resumable close, not a stream that hangs or spins.
Reconnecting while Redis is away is refused at once (503: the stream cap cannot be
counted); the reply goes on in the worker. When Redis is back (empty) the client
resumes from its last cursor and gets the rest of the session from the database:
the reply's one final, nothing twice. No process is restarted.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from tests.conftest import make_tenant_key
from tests.conversations.outage_support import (
    BOUND,
    SessionFollower,
    assert_same_processes,
    outage_system,
    own_redis,
    pids,
)
from tests.live import TERMINAL, read_stream, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Follower(SessionFollower):
    """Every envelope of the followed stream, the heartbeats counted, how it ended."""

    def __init__(self, url: str, key: str, session_id: str) -> None:
        super().__init__(url, key, session_id)
        self.events: list[dict[str, Any]] = []
        self.heartbeats = 0
        self.last_frame: dict[str, Any] | None = None
        self.ended = threading.Event()

    def run(self) -> None:
        try:
            with self.connect(read=60) as response:
                assert response.status_code == 200
                event_type = None
                for line in response.iter_lines():
                    if line.startswith(":"):
                        self.heartbeats += 1
                    elif line.startswith("event:"):
                        event_type = line[6:].strip()
                    elif line.startswith("data:"):
                        frame = json.loads(line[5:])
                        if event_type == "error":
                            self.last_frame = frame
                        else:
                            self.events.append(frame)
                        event_type = None
        except Exception as exc:
            self.error = repr(exc)
        finally:
            self.ended.set()


def test_a_redis_outage_ends_open_streams_resumably_and_they_resume(live_db: None) -> None:
    from django.conf import settings

    from conversations.models import SessionEvent

    key = make_tenant_key().key
    with (
        own_redis() as redis_server,
        outage_system(
            {
                "REDIS_URL": redis_server.url,
                "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,  # the broker stays up
            }
        ) as system,
    ):
        before = pids(system)
        with system.client(key) as api:
            first = api.post("/v1/session/message", json={"message": "first [[tokens=2]]"}).json()
            sid = first["session_id"]
            read_stream(system, key, sid)
            follower = Follower(system.url, key, sid)
            follower.start()
            # A reply of 40 chunks, a quarter second apart: Redis goes away in the middle.
            second = api.post(
                "/v1/session/message",
                json={"message": "second [[tokens=40]] [[delay=0.25]]", "session_id": sid},
            ).json()

            def second_streams() -> bool:
                ids = [e.get("event_id") for e in follower.events]
                if second["event_id"] not in ids:
                    return False
                after = follower.events[ids.index(second["event_id"]) :]
                return any(e["type"] == "assistant.delta" for e in after)

            wait_until(second_streams, timeout=60, what="the second reply to stream")
            redis_server.stop()
            beats_at_stop = follower.heartbeats
            ended = follower.ended.wait(30)
            beats = follower.heartbeats - beats_at_stop
            assert ended, f"the open stream neither ended nor said why ({beats} heartbeats in 30 s)"
            assert follower.error is None, follower.error
            assert follower.last_frame is not None, "the stream ended without its last frame"
            assert follower.last_frame["status"] == 503, follower.last_frame
            assert follower.last_frame["error"]["code"] == "stream_unavailable", follower.last_frame
            # A few heartbeats at most, not one per refused connection attempt.
            assert beats <= 3, beats

            # Reconnecting while Redis is away: refused at once, with when to try again.
            started = time.monotonic()
            again = api.get(f"/v1/sessions/{sid}/stream", params={"after": 0})
            took = time.monotonic() - started
            assert again.status_code == 503 and int(again.headers["retry-after"]) >= 1, again.text
            assert took <= BOUND, took
            time.sleep(3)
            redis_server.start()  # empty: the stream buffers are gone
            up_at = time.monotonic()

            # Resume from the last cursor the client saw.
            last_id = follower.events[-1]["id"]
            resumed = read_stream(
                system,
                key,
                sid,
                last_event_id=str(last_id),
                until=lambda e: e["type"] in TERMINAL and e["data"].get("reply_to") == second["event_id"],
                timeout=90,
            )
        print(f"RECOVERY {time.monotonic() - up_at:.2f} s: the client resumed to the reply's end")
        seen = [int(e["id"]) for e in follower.events] + [int(e["id"]) for e in resumed]
        assert seen == sorted(set(seen)), "an event came twice or out of order"
        finals = [e for e in follower.events + resumed if e["type"] in TERMINAL]
        assert [e["data"].get("reply_to") for e in finals] == [first["event_id"], second["event_id"]]
        assert resumed[-1]["type"] == "assistant.final"
        assert resumed[-1]["data"]["message"] == "".join(f"t{i} " for i in range(40))
        assert SessionEvent.objects.filter(session_id=sid, type__in=TERMINAL).count() == 2, (
            "each message ends once"
        )
        assert_same_processes(system, before)
