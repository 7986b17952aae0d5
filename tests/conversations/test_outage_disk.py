"""The disk under the embedded SQLite database fills up, then space comes back.

The database file lives on a small tmpfs of the test's own; a filler file
takes the rest of it. While it is full, every send answers within the bound:
503 ``database_unavailable`` with ``Retry-After``, never a 500; nothing is
half-written (SQLite's transactions are atomic); once the filler is gone the
same processes accept again and every accepted message ends exactly once.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conversations.support import stub_env
from tests.conversations.test_outage_database import BOUND, Traffic
from tests.live import ROOT, TERMINAL, LiveSystem, stub_llm, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def small_disk() -> Iterator[Path]:
    where = Path(tempfile.mkdtemp(prefix="soma-disk-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(where)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"DISK-FULL TEST SKIPPED: cannot mount a small tmpfs here ({mounted.stderr.strip()})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _fill(disk: Path) -> Path:
    """Write a file until the disk has no room left; returns it."""
    filler = disk / "filler"
    chunk = b"\0" * (1 << 20)
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError:
            pass
        try:  # the last partial megabyte, byte by byte in larger steps
            for size in (1 << 16, 1 << 12, 1 << 8, 1):
                while True:
                    f.write(b"\0" * size)
                    f.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_is_refused_cleanly_and_recovers(small_disk: Path) -> None:
    db = small_disk / "soma.sqlite3"
    env = {**os.environ, "DATABASE_URL": "", "SOMA_SQLITE_PATH": str(db)}
    for args in (["migrate", "--noinput", "-v", "0"], ["create_api_key", "--tenant", "disk"]):
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    key = done.stdout.strip().splitlines()[-1]
    prefix = f"{os.environ['SOMA_REDIS_PREFIX']}{uuid.uuid4().hex[:8]}:"
    with stub_llm() as stub:
        system = LiveSystem(
            env={
                **stub_env(stub.url),
                "DATABASE_URL": "",
                "SOMA_SQLITE_PATH": str(db),
                "SOMA_REDIS_PREFIX": prefix,
            }
        )
        system.start(beat=False)
        try:
            with system.solo():
                traffic = Traffic(system.url, key)
                traffic.start()
                time.sleep(2)
                full_at = time.monotonic()
                filler = _fill(small_disk)
                # The beat starts while nothing can be written: it must still install the sweeps
                # (the turns that failed meanwhile need them) once the disk has room again.
                beat = system.start_beat()
                wait_until(lambda: "beat: Starting" in beat.log_tail(20_000), timeout=60, what="the beat")
                procs = [system.web, *system.workers, system.beat]
                pids = [p.popen.pid for p in procs if p is not None]
                time.sleep(4)
                filler.unlink()
                freed_at = time.monotonic()
                time.sleep(6)
                traffic.halt.set()
                traffic.join(30)
            answers = traffic.answers
            print(
                f"{len(answers)} sends: {sum(a.status == 202 for a in answers)} accepted, "
                f"{sum(a.status == 503 for a in answers)} refused"
            )
            bad = [a for a in answers if a.status not in (202, 503) or a.seconds > BOUND]
            assert not bad, [(a.status, round(a.seconds, 2), str(a.body)[:300]) for a in bad]
            refused = [a for a in answers if a.status == 503]
            assert refused, "the full disk was never noticed"
            assert all(
                a.body["error"]["code"] == "database_unavailable" and int(a.headers["retry-after"]) >= 1
                for a in refused
            ), refused[0]
            assert all(full_at - 1 <= a.at <= freed_at + 3 for a in refused), "refused while there was room"
            assert any(a.status == 202 and a.at > freed_at + 2 for a in answers), "no recovery"
            accepted = [a.body["turn_id"] for a in answers if a.status == 202]
            back = min(
                (a.at + a.seconds for a in answers if a.status == 202 and a.at >= freed_at), default=None
            )
            if back is not None:
                print(f"RECOVERY {back - freed_at:.2f} s: first send accepted after the return")

            def ends() -> dict[str, int] | None:
                with sqlite3.connect(db, timeout=30) as conn:
                    rows = conn.execute(
                        "SELECT t.id, (SELECT count(*) FROM session_events e"
                        " WHERE e.session_id = t.session_id"
                        f" AND e.type IN ({','.join('?' * len(TERMINAL))})) FROM turns t",
                        tuple(TERMINAL),
                    ).fetchall()
                counts = {uuid.UUID(hex=r[0]).hex: int(r[1]) for r in rows}
                mine = {t: counts.get(uuid.UUID(t).hex, 0) for t in accepted}
                return mine if all(mine.values()) else None

            counts = wait_until(ends, timeout=120, interval=1, what="every accepted turn to end")
            assert set(counts.values()) == {1}, {t: n for t, n in counts.items() if n != 1}
            # Nothing half-written: the file is sound, and a refused send left no row (each
            # send starts a session of its own: exactly the accepted ones are there).
            with sqlite3.connect(db, timeout=30) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                sessions = conn.execute("SELECT count(*) FROM sessions").fetchone()[0]
                turns = conn.execute("SELECT count(*) FROM turns").fetchone()[0]
            assert sessions == turns == len(accepted), (sessions, turns, len(accepted))
            # The operator is told why, in the web process's log.
            assert system.web is not None
            said = [
                line
                for line in system.web.log_path.read_text(errors="replace").splitlines()
                # SQLite's own words: "database or disk is full", or "disk I/O error" (the journal).
                if '"database unavailable' in line and "disk" in line
            ]
            assert said, "no log line says the database's disk failed"
            assert pids == [p.popen.pid for p in procs if p is not None] and all(
                p.alive() for p in procs if p
            )
        except BaseException:
            print(system.logs())
            raise
        finally:
            system.stop()
