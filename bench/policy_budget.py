"""Cost of the governance gates: one policy decision (embedded, OPA stub) and one budget reserve + settle.

Run: ``.venv/bin/python -m bench.policy_budget [--n 2000]`` (uses REDIS_URL or the embedded Redis).
The OPA figure is against tests/stubs/opa_server.py (Python + regopy, a fresh
interpreter per request): it measures the HTTP path, not a real OPA server.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable

from bench.common import bench_environment, quiet_client_logs

bench_environment()
os.environ.setdefault("SOMA_REDIS_PREFIX", f"bench{uuid.uuid4().hex[:6]}:")

import django  # noqa: E402

django.setup()
quiet_client_logs()

from somaagent.budgets import counters as cnt  # noqa: E402
from somaagent.budgets.periods import current_periods  # noqa: E402
from somaagent.policy.data import TenantPolicyData  # noqa: E402
from somaagent.policy.embedded import QUERY, RegoPolicy  # noqa: E402
from somaagent.policy.remote import OpaPolicy  # noqa: E402
from somaagent.policy.types import PolicyRequest  # noqa: E402


def timed(fn: Callable[[], object], n: int) -> str:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[int(len(samples) * 0.95) - 1]
    return f"median {statistics.median(samples):.3f} ms, p95 {p95:.3f} ms, n={n}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    tenant = str(uuid.uuid4())
    data = TenantPolicyData(tenant_id=tenant, version=1, document={"denied_actions": ["memory.write"]})
    request = PolicyRequest(
        tenant=tenant,
        persona_id=None,
        action="conversation.send",
        resource="session:x",
        context={"policy_version": 1, "actor_role": "member"},
    )
    embedded = RegoPolicy()
    print(
        "policy decision, embedded, repeated input (memo):",
        timed(lambda: embedded.decide(request, data), args.n),
    )
    fresh = iter(range(10**9))

    def new_resource() -> object:  # a question not asked before: the compiled bundle is queried
        return embedded.decide(
            PolicyRequest(**{**request.__dict__, "resource": f"session:{next(fresh)}"}), data
        )

    print("policy decision, embedded, new input (bundle query):", timed(new_resource, args.n))
    interpreted = RegoPolicy()
    compiled = interpreted._compiled(data)

    def interpret() -> object:  # what a decision cost before bundles: the query interpreted each time
        compiled.interpreter.set_input_term(json.dumps(request.as_input()))
        return compiled.interpreter.query(QUERY)

    print("policy decision, embedded, query interpreted (no bundle):", timed(interpret, args.n // 4))

    from tests.live import StubServer

    stub = StubServer("tests.stubs.opa_server")
    try:
        remote = OpaPolicy(stub.url)
        remote.push(data)
        print(
            "policy decision, OPA stub over HTTP:", timed(lambda: remote.decide(request, data), args.n // 4)
        )
    finally:
        stub.stop()

    day, month = current_periods()
    counters = [cnt.Counter(tenant, "all", day, 10**12), cnt.Counter(tenant, "all", month, 10**12)]
    for counter in counters:
        cnt.sync_redis().set(counter.key, 0, ex=3600)

    def reserve_and_settle() -> None:
        turn = uuid.uuid4()
        cnt.reserve(turn_id=turn, counters=counters, amount=1200, meta={"prompt": 200})
        cnt.settle(turn_id=turn, counters=counters, actual=300)

    print("budget reserve + settle (2 counters):", timed(reserve_and_settle, args.n))
    for counter in counters:
        cnt.sync_redis().delete(counter.key)


if __name__ == "__main__":
    main()
