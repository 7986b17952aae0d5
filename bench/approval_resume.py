"""Resume latency of a turn parked on a tool approval: approval POST → next events at a stream client.

Starts the real processes (uvicorn, a Celery worker for conversations, one for
tools, celery-beat, the stub model with zero latency) on whatever
DATABASE_URL / REDIS_URL / CELERY_BROKER_URL say, under a Redis key prefix of
its own. Each run: a message whose tool call (``current_time``) needs approval
(the tenant's policy), an SSE client on its session waits for
``tool.approval_requested``, then the approval is POSTed and the client times

- POST sent → ``tool.approval_decided`` (written by the answer itself),
- POST sent → ``tool.result`` (the continuation claimed the turn, the tool ran),
- POST sent → the first ``assistant.delta`` after it (the model's next round streams).

Run: ``python -m bench.approval_resume [--runs N]`` (default 40).
"""

from __future__ import annotations

import argparse
import time
import uuid

import httpx

from bench.common import Row, Table, machine_description
from bench.turn_latency import SseReader, _drop_redis_keys, _forget_earlier_runs, _migrate, _setup_django


def _one(client: httpx.Client, url: str, key: str, i: int) -> tuple[float, float, float]:
    accepted = client.post(
        "/v1/session/message", json={"message": f"r{i} [[tool=current_time:{{}}]] [[tokens=3]]"}
    ).json()
    sid = accepted["session_id"]
    reader = SseReader(url, key, sid, after=0)
    reader.start()
    reader.ready.wait(10)
    _, request = reader.next_of({"tool.approval_requested"})
    started = time.perf_counter()
    r = client.post(
        f"/v1/sessions/{sid}/approvals/{request['data']['call_id']}", json={"decision": "approve"}
    )
    assert r.status_code == 200, r.text
    decided_at, _ = reader.next_of({"tool.approval_decided"})
    result_at, _ = reader.next_of({"tool.result"})
    delta_at, _ = reader.next_of({"assistant.delta"})
    reader.next_of({"assistant.final", "assistant.error"})
    reader.stop = True
    ms = [(t - started) * 1000 for t in (decided_at, result_at, delta_at)]
    return ms[0], ms[1], ms[2]


def run(*, quick: bool = False, runs: int | None = None) -> list[Table]:
    runs = runs or (20 if quick else 40)
    _setup_django()
    _migrate()
    from somaagent.audit import Actor
    from somaagent.identity.apikeys import api_key_create, tenant_get_or_create
    from somaagent.policy.data import policy_data_set
    from tests.live import LiveSystem, StubServer

    _forget_earlier_runs()
    tenant = tenant_get_or_create(name=f"bench-{uuid.uuid4().hex[:8]}")
    policy_data_set(tenant=tenant, document={"approval_tools": ["current_time"]}, actor=Actor.system("bench"))
    _, key = api_key_create(tenant=tenant, name="bench")
    stub = StubServer("tests.stubs.llm_server")
    system = LiveSystem(
        env={"SOMA_LLM_BASE_URL": f"{stub.url}/v1", "SOMA_LLM_MODEL": "stub-model"},
        worker_queues=("conversation,memory,default", "tools"),
    )
    decided, results, deltas = [], [], []
    try:
        system.start()
        with httpx.Client(base_url=system.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
            for i in range(runs + 3):
                d, r, t = _one(c, system.url, key, i)
                if i >= 3:  # warm-up
                    decided.append(d)
                    results.append(r)
                    deltas.append(t)
    finally:
        system.stop()
        stub.stop()
        _forget_earlier_runs()
        _drop_redis_keys()
    table = Table(
        "Approval resume latency (stub model with zero latency)",
        rows=[
            Row("approval POST sent → tool.approval_decided at the SSE client", decided),
            Row("approval POST sent → tool.result (turn resumed, tool ran)", results),
            Row("approval POST sent → next assistant.delta at the SSE client", deltas),
        ],
    )
    table.notes += [
        "the turn is parked while it waits (no worker holds it); the answer dispatches a continuation "
        "through the outbox, any worker claims it and runs the tool on the tools queue, then the model",
        "processes: 1 uvicorn, 1 Celery worker (conversation,memory,default), 1 for tools, celery-beat, "
        "stub model; all on the same machine as the client",
        machine_description(),
    ]
    return [table]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    for table in run(runs=args.runs):
        print(table.markdown())


if __name__ == "__main__":
    main()
