"""Redis goes away under steady traffic and comes back empty; no process is restarted.

With a Redis server of the test's own (tests/servers.py) as the cache, stream
buffer and broker: while it is down every send answers within the bound with
503 ``rate_limit_unavailable`` with ``Retry-After`` (rate limits fail closed,
never open; a send that got past them before Redis went away is accepted, its
turn waiting in the outbox) — never a 500 or a hang; once it is back (without any of
its data: queues, buffers, counters) every message accepted before, during or
after the outage ends with exactly one terminal event, by the same processes.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest

from tests.conftest import make_tenant_key
from tests.conversations.support import stub_env
from tests.conversations.test_outage_database import BOUND, Traffic, _repeated_complaints
from tests.live import TERMINAL, LiveSystem, stub_llm, wait_until
from tests.servers import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_redis_outage_is_refused_or_queued_and_nothing_accepted_is_lost(live_db: None) -> None:
    from conversations.models import SessionEvent, Turn

    redis_server = RedisServer()
    key = make_tenant_key().key
    prefix = f"{os.environ['SOMA_REDIS_PREFIX']}{uuid.uuid4().hex[:8]}:"
    try:
        with stub_llm() as stub:
            env = {
                **stub_env(stub.url),
                "REDIS_URL": redis_server.url,
                "CELERY_BROKER_URL": "",
                "SOMA_REDIS_PREFIX": prefix,
            }
            system = LiveSystem(env=env)
            system.start()
            procs = [system.web, *system.workers, system.beat]
            pids = [p.popen.pid for p in procs if p is not None]
            try:
                with system.solo():
                    traffic = Traffic(system.url, key)
                    traffic.start()
                    time.sleep(3)
                    down_at = time.monotonic()
                    redis_server.stop()
                    time.sleep(10)
                    redis_server.start()  # empty: its queues, buffers and counters are gone
                    up_at = time.monotonic()
                    time.sleep(8)
                    traffic.halt.set()
                    traffic.join(30)
                answers = traffic.answers
                print(
                    f"{len(answers)} sends: {sum(a.status == 202 for a in answers)} accepted, "
                    f"{sum(a.status == 503 for a in answers)} refused, slowest "
                    f"{max(a.seconds for a in answers):.2f} s"
                )
                bad = [a for a in answers if a.status not in (202, 503) or a.seconds > BOUND]
                assert not bad, [(a.status, round(a.seconds, 2), str(a.body)[:300]) for a in bad]
                refused = [a for a in answers if a.status == 503]
                assert refused, "the rate limits could not be checked, yet nothing was refused"
                assert all(
                    a.body["error"]["code"] == "rate_limit_unavailable" and int(a.headers["retry-after"]) >= 1
                    for a in refused
                ), refused[:1]
                assert all(down_at - 1 <= a.at <= up_at + 5 for a in refused), "refused outside the outage"
                accepted = [a.body["turn_id"] for a in answers if a.status == 202]
                back = min(
                    (a.at + a.seconds for a in answers if a.status == 202 and a.at >= up_at), default=None
                )
                if back is not None:
                    print(f"RECOVERY {back - up_at:.2f} s: first send accepted after the return")
                assert any(a.status == 202 and a.at > up_at + 3 for a in answers), "no recovery"

                def ends() -> dict[str, int] | None:
                    counts = {}
                    for turn in Turn.objects.filter(pk__in=accepted).values("pk", "session_id"):
                        counts[str(turn["pk"])] = SessionEvent.objects.filter(
                            session_id=turn["session_id"], type__in=TERMINAL
                        ).count()
                    return counts if len(counts) == len(accepted) and all(counts.values()) else None

                counts = wait_until(ends, timeout=120, interval=1, what="every accepted turn to end")
                assert set(counts.values()) == {1}, {t: n for t, n in counts.items() if n != 1}
                noise = _repeated_complaints(procs)
                print("log lines at WARNING or above, by logger and message:", noise)
                repeated = {k: n for k, n in noise.items() if n > 3 and ":django.request:" not in k}
                assert not repeated, repeated
                assert all(p.alive() for p in procs if p is not None)
                assert pids == [p.popen.pid for p in procs if p is not None]
            except BaseException:
                print(system.logs())
                raise
            finally:
                system.stop()
    finally:
        redis_server.destroy()
