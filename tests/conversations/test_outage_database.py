"""The database goes away under steady traffic and comes back; no process is restarted.

Against a PostgreSQL server of the test's own (tests/servers.py) with the real
web, worker and beat: while it is down every send answers within the bound
with 202 or 503 ``database_unavailable`` (JSON, ``Retry-After``), never a 500
or a hang; once it is back every message accepted before, during or after the
outage ends with exactly one terminal event, by the same processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from tests.conversations.support import stub_env
from tests.live import ROOT, TERMINAL, LiveSystem, iter_sse, stub_llm, wait_until
from tests.servers import PgServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BOUND = 2.0  # seconds


@dataclass
class Answer:
    at: float
    status: int
    seconds: float
    body: Any
    headers: dict[str, str]


def _manage(url: str, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


class Traffic(threading.Thread):
    """One message every ``every`` seconds to a new session, each answer recorded."""

    def __init__(self, url: str, key: str, every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.url, self.key, self.every = url, key, every
        self.answers: list[Answer] = []
        self.halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}) as client:
            while not self.halt.is_set():
                started = time.monotonic()
                try:
                    r = client.post(
                        "/v1/session/message",
                        json={"message": f"steady {uuid.uuid4().hex[:6]} [[tokens=3]]"},
                        timeout=10,
                    )
                    body: Any = (
                        r.json()
                        if r.headers.get("content-type", "").startswith("application/json")
                        else r.text
                    )
                    self.answers.append(
                        Answer(started, r.status_code, time.monotonic() - started, body, dict(r.headers))
                    )
                except httpx.HTTPError as exc:
                    self.answers.append(Answer(started, 0, time.monotonic() - started, repr(exc), {}))
                self.halt.wait(max(0.0, self.every - (time.monotonic() - started)))


class Follower(threading.Thread):
    """Follows one session's SSE stream on one connection; notes the user events finals answer."""

    def __init__(self, url: str, key: str, session_id: str) -> None:
        super().__init__(daemon=True)
        self.url = f"{url}/v1/sessions/{session_id}/stream"
        self.key = key
        self.reply_to: set[str] = set()
        self.connections = 0
        self.error: str | None = None

    def run(self) -> None:
        try:
            with httpx.stream(
                "GET",
                self.url,
                params={"after": 0},
                headers={"Authorization": f"Bearer {self.key}"},
                timeout=httpx.Timeout(10, read=120),
            ) as response:
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


def _repeated_complaints(procs: list[Any]) -> dict[str, int]:
    """How often each process logged each complaint (WARNING and above), by logger and message."""
    counts: dict[str, int] = {}
    for proc in procs:
        if proc is None:
            continue
        for line in proc.log_path.read_text(errors="replace").splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if doc.get("level") in ("WARNING", "ERROR", "CRITICAL"):
                what = f"{proc.name}:{doc.get('logger')}:{str(doc.get('message'))[:60]}"
                counts[what] = counts.get(what, 0) + 1
    return counts


def test_a_database_outage_is_refused_quickly_and_nothing_accepted_is_lost() -> None:
    pg = PgServer()
    try:
        url = pg.create_database("soma")
        _manage(url, "migrate", "--noinput", "-v", "0")
        key = _manage(url, "create_api_key", "--tenant", "outage").strip().splitlines()[-1]
        prefix = f"{os.environ['SOMA_REDIS_PREFIX']}{uuid.uuid4().hex[:8]}:"
        with stub_llm() as stub:
            system = LiveSystem(env={**stub_env(stub.url), "DATABASE_URL": url, "SOMA_REDIS_PREFIX": prefix})
            system.start()
            pids = [p.popen.pid for p in [system.web, *system.workers, system.beat] if p is not None]
            try:
                # A client following a session's stream across the outage, on one connection.
                with httpx.Client(base_url=system.url, headers={"Authorization": f"Bearer {key}"}) as c:
                    first = c.post("/v1/session/message", json={"message": "before [[tokens=2]]"}).json()
                follower = Follower(system.url, key, first["session_id"])
                follower.start()
                traffic = Traffic(system.url, key)
                traffic.start()
                time.sleep(3)
                down_at = time.monotonic()
                pg.stop()
                time.sleep(12)
                pg.start()
                up_at = time.monotonic()
                time.sleep(6)
                traffic.halt.set()
                traffic.join(30)
                answers = traffic.answers
                print(
                    f"{len(answers)} sends: {sum(a.status == 202 for a in answers)} accepted, "
                    f"{sum(a.status == 503 for a in answers)} refused, slowest "
                    f"{max(a.seconds for a in answers):.2f} s"
                )
                slow_or_bad = [a for a in answers if a.status not in (202, 503) or a.seconds > BOUND]
                assert not slow_or_bad, [
                    (a.status, round(a.seconds, 2), str(a.body)[:200]) for a in slow_or_bad
                ]
                refused = [a for a in answers if a.status == 503]
                assert refused, "the outage was never noticed"
                assert all(
                    a.body["error"]["code"] == "database_unavailable" and int(a.headers["retry-after"]) >= 1
                    for a in refused
                ), refused[0]
                assert all(down_at - 1 <= a.at <= up_at + 5 for a in refused), "refused outside the outage"
                accepted = [a.body["turn_id"] for a in answers if a.status == 202]
                back = min(
                    (a.at + a.seconds for a in answers if a.status == 202 and a.at >= up_at), default=None
                )
                if back is not None:
                    print(f"RECOVERY {back - up_at:.2f} s: first send accepted after the return")
                # The stream opened before the outage is still the same connection and carries
                # the next turn of its session.
                with httpx.Client(base_url=system.url, headers={"Authorization": f"Bearer {key}"}) as c:
                    after = c.post(
                        "/v1/session/message",
                        json={"message": "after [[tokens=2]]", "session_id": first["session_id"]},
                    ).json()
                wait_until(
                    lambda: after["event_id"] in follower.reply_to, timeout=60, what="the followed stream"
                )
                assert follower.error is None and follower.connections == 1
                assert len([a for a in answers if a.status == 202 and a.at > up_at + 3]) > 0, "no recovery"

                def all_ended() -> dict[str, int] | None:
                    counts = _terminal_counts(url, accepted)
                    return counts if len(counts) == len(accepted) and all(counts.values()) else None

                counts = wait_until(all_ended, timeout=120, interval=1, what="every accepted turn to end")
                assert set(counts.values()) == {1}, {t: n for t, n in counts.items() if n != 1}
                noise = _repeated_complaints([system.web, *system.workers, system.beat])
                print("log lines at WARNING or above, by logger and message:", noise)
                # Each complaint once (per process), not once a second: Django's line per 5xx
                # response is the only one that repeats, once per refused request.
                repeated = {k: n for k, n in noise.items() if n > 2 and ":django.request:" not in k}
                assert not repeated, repeated
                assert all(p.alive() for p in [system.web, *system.workers, system.beat] if p is not None)
                assert pids == [
                    p.popen.pid for p in [system.web, *system.workers, system.beat] if p is not None
                ]
            except BaseException:
                print(system.logs())
                raise
            finally:
                system.stop()
    finally:
        pg.destroy()
