"""PerProcess builds its value once per process (once for a burst of first callers), and again
in a forked child."""

from __future__ import annotations

import os
import threading
import time

import pytest

from somaagent.process_local import PerProcess, once_per_process


def test_built_once_in_a_process() -> None:
    built: list[object] = []

    def build() -> object:
        built.append(object())
        return built[-1]

    value = PerProcess(build)
    assert value.get() is value.get()
    assert len(built) == 1


def test_a_forked_child_builds_its_own() -> None:
    value = PerProcess(lambda: os.getpid())
    assert value.get() == os.getpid()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child reports what it got, then leaves without pytest's teardown
        os.write(write, str(value.get()).encode())
        os._exit(0)
    os.waitpid(child, 0)
    assert int(os.read(read, 32)) == child


def test_a_burst_of_first_callers_builds_it_once() -> None:
    """A hundred requests arriving at a cold process wait for one build instead of each
    building its own (the policy engine was compiled by every thread of the first burst)."""
    built: list[int] = []
    gate = threading.Barrier(20)

    @once_per_process
    def engine() -> int:
        built.append(1)
        time.sleep(0.05)  # long enough for every caller to arrive while it builds
        return len(built)

    def call() -> None:
        gate.wait()
        results.append(engine())

    results: list[int] = []
    threads = [threading.Thread(target=call) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert built == [1] and results == [1] * 20
    engine.cache_clear()
    assert engine() == 2, "cache_clear forgets it, as with lru_cache"


def test_the_policy_engine_is_built_once_per_process_for_a_burst(monkeypatch: pytest.MonkeyPatch) -> None:
    from somaagent.policy import embedded, port

    made: list[object] = []
    real = embedded.RegoPolicy

    class Counted(real):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            made.append(self)
            super().__init__()

    monkeypatch.setattr(embedded, "RegoPolicy", Counted)
    port.policy_port.cache_clear()
    try:
        threads = [threading.Thread(target=port.policy_port) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(made) == 1
    finally:
        port.policy_port.cache_clear()
