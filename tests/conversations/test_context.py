"""The prompt stays inside the token budget: system and current message kept, oldest history dropped."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from conversations.turn.context_window import (
    SUMMARY_PREFIX,
    context_budget,
    context_fit,
    message_tokens,
    prompt_tokens,
)
from somaagent.models import UISetting
from somaagent.tokens import estimate_tokens
from somaagent.ui_setting_schemas import ui_setting_problems


def conversation(n: int, size: int = 400) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": "You are helpful."}]
    for i in range(n):
        role = "user" if i % 2 == 0 else "assistant"
        messages.append({"role": role, "content": f"m{i} " + "x" * size})
    messages.append({"role": "user", "content": "the current question"})
    return messages


def test_estimate_is_about_four_characters_a_token() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("x" * 4000) == 1000
    assert message_tokens({"role": "user", "content": "abcd"}) == 5


def test_everything_is_kept_when_it_fits() -> None:
    messages = conversation(4, size=10)
    assert context_fit(messages=messages, budget=10_000) == messages


def test_oldest_history_is_dropped_to_fit_the_budget() -> None:
    messages = conversation(100)
    fitted = context_fit(messages=messages, budget=1000)
    assert prompt_tokens(fitted) <= 1000
    assert fitted[0] == messages[0] and fitted[-1] == messages[-1]
    kept = [m["content"].split()[0] for m in fitted[1:-1]]
    assert kept == [f"m{i}" for i in range(100 - len(kept), 100)], "must keep the newest, in order"
    assert 5 <= len(kept) < 100


def test_the_budget_holds_whatever_the_history_length() -> None:
    sizes = {n: prompt_tokens(context_fit(messages=conversation(n), budget=2000)) for n in (10, 100, 10_000)}
    assert all(size <= 2000 for size in sizes.values())
    assert sizes[100] > 1800 and sizes[10_000] > 1800, "the budget is used, not wasted"


def test_the_summary_goes_after_the_leading_system_messages_and_counts() -> None:
    messages = conversation(100)
    summary = "The user is called Ada. " * 20
    fitted = context_fit(messages=messages, summary=summary, budget=1000)
    assert fitted[1] == {"role": "system", "content": SUMMARY_PREFIX + summary}
    assert prompt_tokens(fitted) <= 1000
    without = context_fit(messages=messages, budget=1000)
    assert len(fitted) < len(without) + 1


def test_system_messages_inside_the_history_are_kept() -> None:
    messages = conversation(50)
    messages.insert(3, {"role": "system", "content": "Recalled memory: likes tea."})
    fitted = context_fit(messages=messages, budget=500)
    assert {"role": "system", "content": "Recalled memory: likes tea."} in fitted


def test_a_current_message_larger_than_the_budget_is_still_sent() -> None:
    messages = conversation(10)
    messages[-1] = {"role": "user", "content": "y" * 10_000}
    fitted = context_fit(messages=messages, budget=500)
    assert fitted == [messages[0], messages[-1]]


def test_tool_results_cut_off_from_their_call_are_dropped() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "s"},
        {"role": "assistant", "content": "x" * 4000, "tool_calls": [{"id": "1"}]},
        {"role": "tool", "content": "result", "tool_call_id": "1"},
        {"role": "assistant", "content": "done"},
        {"role": "user", "content": "next"},
    ]
    fitted = context_fit(messages=messages, budget=100)
    assert [m["role"] for m in fitted] == ["system", "assistant", "user"]


@pytest.mark.django_db
def test_the_budget_is_the_context_ui_setting_else_the_environment(settings) -> None:
    settings.SOMA = replace(settings.SOMA, context_tokens=4321)
    assert context_budget() == 4321
    UISetting.objects.create(key="context", document={"context_tokens": 900})
    assert context_budget() == 900
    assert prompt_tokens(context_fit(messages=conversation(100))) <= 900
    assert ui_setting_problems("context", {"context_tokens": 10}) == [
        "context_tokens must be an integer of at least 256"
    ]
