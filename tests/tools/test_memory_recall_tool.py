"""The ``memory_recall`` tool asks the memory port, scoped to the run's tenant and persona."""

from __future__ import annotations

import pytest

from tests.memory.test_recall import store_memory
from tests.tools.test_execute import make_run
from tools.builtin import builtins_register
from tools.models import ToolRun
from tools.registry import REGISTRY

pytestmark = pytest.mark.django_db


def test_memory_recall_is_registered_with_a_schema() -> None:
    builtins_register()
    tool = REGISTRY["memory_recall"]
    assert tool.parameters["required"] == ["query"]


def test_memory_recall_finds_the_tenants_memory_and_not_anothers() -> None:
    from tools.execute import tool_run_execute

    run = make_run(tool="memory_recall", args={"query": "favourite colour", "top_k": 3})
    other = make_run(tool="memory_recall", args={"query": "favourite colour"})
    store_memory(run.tenant, "My favourite colour is teal.")
    store_memory(other.tenant, "The other tenant's favourite colour is red.")

    assert tool_run_execute(request_id=run.pk) == "success"
    result = ToolRun.objects.get(pk=run.pk).result
    snippets = [m["snippet"] for m in result["memories"]]
    assert any("teal" in s for s in snippets)
    assert not any("red" in s for s in snippets)
