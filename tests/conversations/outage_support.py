"""Helpers shared by the outage tests (``test_outage_*.py``).

A dependency of the test's own to take away (a PostgreSQL or Redis server, tests/servers.py),
a system of its own on the stub model, steady traffic and how its answers are judged, a
client following a session's stream across the outage, and the checks that follow: every
accepted turn ends once, complaints are logged once, the same processes are still running.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from tests.conversations.support import own_system, stub_env
from tests.live import ROOT, LiveSystem, Proc, stub_llm, wait_until
from tests.servers import PgServer, RedisServer

BOUND = 2.0  # seconds: every answer during an outage, a refusal or not, comes within it


@dataclass
class Answer:
    at: float
    status: int
    seconds: float
    body: Any
    headers: dict[str, str]


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


class SessionFollower(threading.Thread):
    """A client following one session's SSE stream from cursor 0, on one connection, in a thread."""

    def __init__(self, url: str, key: str, session_id: str) -> None:
        super().__init__(daemon=True)
        self.url = f"{url}/v1/sessions/{session_id}/stream"
        self.key = key
        self.error: str | None = None

    def connect(self, *, read: float) -> AbstractContextManager[httpx.Response]:
        return httpx.stream(
            "GET",
            self.url,
            params={"after": 0},
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=httpx.Timeout(10, read=read),
        )


def traffic_through(
    system: LiveSystem,
    key: str,
    take_away: Callable[[], object],
    bring_back: Callable[[], object],
    *,
    before: float,
    away: float,
    after: float,
) -> tuple[list[Answer], float, float]:
    """Steady traffic for ``before`` seconds, through ``take_away()``, ``away`` seconds of outage
    and ``bring_back()``, then ``after`` seconds more: its answers, when the dependency went
    away and when it came back (``time.monotonic()``)."""
    traffic = Traffic(system.url, key)
    traffic.start()
    try:
        time.sleep(before)
        down_at = time.monotonic()
        take_away()
        time.sleep(away)
        bring_back()
        up_at = time.monotonic()
        time.sleep(after)
    finally:
        traffic.halt.set()
        traffic.join(30)
    return traffic.answers, down_at, up_at


def manage(url: str, *args: str) -> str:
    """Run ``manage.py`` against the database at ``url``; its output."""
    env = {**os.environ, "DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@contextmanager
def own_postgres(tenant: str) -> Iterator[tuple[PgServer, str, str]]:
    """A PostgreSQL server of the test's own with a migrated database: the server, the
    database's URL and an API key of a new tenant ``tenant`` in it."""
    pg = PgServer()
    try:
        url = pg.create_database("soma")
        manage(url, "migrate", "--noinput", "-v", "0")
        key = manage(url, "create_api_key", "--tenant", tenant).strip().splitlines()[-1]
        yield pg, url, key
    finally:
        pg.destroy()


@contextmanager
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        yield server
    finally:
        server.destroy()


@contextmanager
def outage_system(env: dict[str, str], *, beat: bool = True) -> Iterator[LiveSystem]:
    """A system of its own (``own_system``: its own Redis key prefix, alone in sweeping) on the
    stub model, with ``env`` pointing it at what the test takes away."""
    with stub_llm() as stub, own_system({**stub_env(stub.url), **env}, beat=beat) as system:
        yield system


def processes(system: LiveSystem) -> list[Proc]:
    return [p for p in (system.web, *system.workers, system.beat) if p is not None]


def pids(system: LiveSystem) -> list[int]:
    return [p.popen.pid for p in processes(system)]


def assert_same_processes(system: LiveSystem, before: list[int]) -> None:
    """No process was restarted: the ones running are alive and the ones of ``before``."""
    assert all(p.alive() for p in processes(system))
    assert before == pids(system)


def assert_outage_answers(
    answers: list[Answer], *, code: str, down_at: float, up_at: float, late: float = 5, recovered: float = 3
) -> list[str]:
    """Every send was answered within BOUND, 202 or 503; some were refused, each with ``code``
    and ``Retry-After``, while the dependency was away (from a second before ``down_at`` to
    ``late`` seconds after ``up_at``); a send more than ``recovered`` seconds after ``up_at``
    was accepted. Returns the accepted turns' ids."""
    print(
        f"{len(answers)} sends: {sum(a.status == 202 for a in answers)} accepted, "
        f"{sum(a.status == 503 for a in answers)} refused, slowest "
        f"{max(a.seconds for a in answers):.2f} s"
    )
    bad = [a for a in answers if a.status not in (202, 503) or a.seconds > BOUND]
    assert not bad, [(a.status, round(a.seconds, 2), str(a.body)[:300]) for a in bad]
    refused = [a for a in answers if a.status == 503]
    assert refused, f"nothing was refused ({code}): the outage was never noticed"
    assert all(a.body["error"]["code"] == code and int(a.headers["retry-after"]) >= 1 for a in refused), (
        refused[0]
    )
    assert all(down_at - 1 <= a.at <= up_at + late for a in refused), "refused outside the outage"
    assert any(a.status == 202 and a.at > up_at + recovered for a in answers), "no recovery"
    back = min((a.at + a.seconds for a in answers if a.status == 202 and a.at >= up_at), default=None)
    if back is not None:
        print(f"RECOVERY {back - up_at:.2f} s: first send accepted after the return")
    return [a.body["turn_id"] for a in answers if a.status == 202]


def assert_each_ends_once(accepted: list[str], terminals: Callable[[list[str]], dict[str, int]]) -> None:
    """Waits until each accepted turn's session holds a terminal event, then: exactly one each.
    ``terminals(turn_ids)`` counts them by turn id (a turn not found yet may be left out)."""

    def ended() -> dict[str, int] | None:
        found = terminals(accepted)
        counts = {turn: found.get(turn, 0) for turn in accepted}
        return counts if all(counts.values()) else None

    counts = wait_until(ended, timeout=120, interval=1, what="every accepted turn to end")
    assert set(counts.values()) == {1}, {t: n for t, n in counts.items() if n != 1}


def assert_complaints_not_repeated(system: LiveSystem, *, most: int) -> None:
    """Each complaint (WARNING and above, by process, logger and message) is logged at most
    ``most`` times, not once a second: Django's line per 5xx response is the only one that
    repeats, once per refused request."""
    counts: dict[str, int] = {}
    for proc in processes(system):
        for line in proc.log_path.read_text(errors="replace").splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if doc.get("level") in ("WARNING", "ERROR", "CRITICAL"):
                what = f"{proc.name}:{doc.get('logger')}:{str(doc.get('message'))[:60]}"
                counts[what] = counts.get(what, 0) + 1
    print("log lines at WARNING or above, by logger and message:", counts)
    repeated = {k: n for k, n in counts.items() if n > most and ":django.request:" not in k}
    assert not repeated, repeated
