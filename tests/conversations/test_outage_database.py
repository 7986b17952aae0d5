"""The database goes away under steady traffic and comes back; no process is restarted.

Against a PostgreSQL server of the test's own (tests/servers.py) with the real
web, worker and beat: while it is down every send answers within the bound
with 202 or 503 ``database_unavailable`` (JSON, ``Retry-After``), never a 500
or a hang; once it is back every message accepted before, during or after the
outage ends with exactly one terminal event, by the same processes.
"""

from __future__ import annotations

import httpx
import psycopg
import pytest

from tests.conversations.outage_support import (
    SessionFollower,
    assert_complaints_not_repeated,
    assert_each_ends_once,
    assert_outage_answers,
    assert_same_processes,
    outage_system,
    own_postgres,
    pids,
    traffic_through,
)
from tests.live import TERMINAL, iter_sse, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Follower(SessionFollower):
    """Notes the user events the finals on the followed stream answer, and how often it connected."""

    def __init__(self, url: str, key: str, session_id: str) -> None:
        super().__init__(url, key, session_id)
        self.reply_to: set[str] = set()
        self.connections = 0

    def run(self) -> None:
        try:
            with self.connect(read=120) as response:
                self.connections += 1
                for event in iter_sse(response):
                    if event is not None and event["type"] == "assistant.final":
                        self.reply_to.add(event["data"]["reply_to"])
        except httpx.HTTPError as exc:
            self.error = repr(exc)


def _terminal_counts(url: str, turn_ids: list[str]) -> dict[str, int]:
    with psycopg.connect(url.replace("postgres://", "postgresql://")) as conn:
        rows = conn.execute(
            "SELECT t.id::text, count(e.id) FROM turns t LEFT JOIN session_events e"
            " ON e.session_id = t.session_id AND e.type = ANY(%s) WHERE t.id::text = ANY(%s) GROUP BY t.id",
            [list(TERMINAL), turn_ids],
        ).fetchall()
    return {turn: int(n) for turn, n in rows}


def test_a_database_outage_is_refused_quickly_and_nothing_accepted_is_lost() -> None:
    with own_postgres("outage") as (pg, url, key), outage_system({"DATABASE_URL": url}) as system:
        before = pids(system)
        # A client following a session's stream across the outage, on one connection.
        with system.client(key) as c:
            first = c.post("/v1/session/message", json={"message": "before [[tokens=2]]"}).json()
        follower = Follower(system.url, key, first["session_id"])
        follower.start()
        answers, down_at, up_at = traffic_through(system, key, pg.stop, pg.start, before=3, away=12, after=6)
        accepted = assert_outage_answers(answers, code="database_unavailable", down_at=down_at, up_at=up_at)
        # The stream opened before the outage is still the same connection and carries
        # the next turn of its session.
        with system.client(key) as c:
            after = c.post(
                "/v1/session/message",
                json={"message": "after [[tokens=2]]", "session_id": first["session_id"]},
            ).json()
        wait_until(lambda: after["event_id"] in follower.reply_to, timeout=60, what="the followed stream")
        assert follower.error is None and follower.connections == 1
        assert_each_ends_once(accepted, lambda turns: _terminal_counts(url, turns))
        assert_complaints_not_repeated(system, most=2)
        assert_same_processes(system, before)
