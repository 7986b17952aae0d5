"""PerProcess builds its value once per process, and again in a forked child."""

from __future__ import annotations

import os

from somaagent.process_local import PerProcess


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
