"""The local analyser: intent, sentiment, tags and complexity over a table of messages."""

from __future__ import annotations

import random
import re
import re._constants as sre_constants
import re._parser as sre_parse
from typing import Any

import pytest

from conversations.turn.analysis import (
    _CODE,
    _LIST_ITEM,
    _SENTENCE_END,
    MAX_ANALYSED_CHARS,
    PATTERNS,
    analyse,
)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("What is the capital of France?", "question"),
        ("how do I reset my password", "question"),
        ("Is it open on Sundays", "question"),
        ("Can you write a haiku about autumn?", "action_request"),
        ("Could you please book a table for two", "action_request"),
        ("Please send me the report", "action_request"),
        ("Translate this into German: good morning", "action_request"),
        ("I need you to draft an email to the team", "action_request"),
        ("The export crashes with an exception every time", "problem_report"),
        ("Why does the login page throw an error?", "problem_report"),
        ("My account is not working since yesterday", "problem_report"),
        ("I went to Paris last week", "statement"),
        ("Thanks, that was helpful.", "statement"),
    ],
)
def test_intent(text: str, intent: str) -> None:
    assert analyse(text).intent == intent


@pytest.mark.parametrize(
    ("text", "sentiment"),
    [
        ("Thanks, this is great!", "positive"),
        ("This is terrible and useless", "negative"),
        ("This is not good at all", "negative"),
        ("Not bad, really", "positive"),
        ("The meeting is at 3pm", "neutral"),
        ("I am so frustrated with this", "negative"),
        ("works now :)", "positive"),
    ],
)
def test_sentiment(text: str, sentiment: str) -> None:
    assert analyse(text).sentiment == sentiment


def test_tags_name_topics() -> None:
    assert analyse("My Python function fails on this SQL query").tags == ["code", "data"]
    assert analyse("I was charged twice, I want a refund").tags == ["billing"]
    assert analyse("We found a vulnerability and a leak").tags == ["security"]
    assert analyse("Hello there").tags == []


def test_complexity_grows_with_length_structure_and_code() -> None:
    short = analyse("hi")
    question = analyse("How do I sort a list in Python?")
    long_technical = analyse(
        "I have a Django API with a Postgres database behind nginx in Kubernetes. First, the "
        "query below is slow; then the deployment times out. Also the Python worker leaks memory.\n"
        "1. Explain why the index is not used.\n2. Refactor the function.\n3. Tune the cluster.\n"
        "```python\ndef load(rows):\n    return [r for r in rows]\n```\n"
        + "More context on the schema. "
        * 20
    )
    assert short.complexity < 0.1
    assert short.complexity < question.complexity < long_technical.complexity
    assert long_technical.complexity >= 0.7
    assert 0 <= long_technical.complexity <= 1


def test_analysis_reports_length_and_is_json_ready() -> None:
    result = analyse("Hello there").as_dict()
    assert result == {
        "intent": "statement",
        "sentiment": "neutral",
        "tags": [],
        "complexity": result["complexity"],
        "chars": 11,
    }


# --- Hostile input (issue 14 item 1): no pattern can backtrack its way into quadratic time. ---

_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT}


def _repeat_problems(items: list[tuple[Any, Any]], *, inside_loop: bool = False) -> list[str]:
    """Backtracking repeats and repeats nested in repeats, anywhere in a parsed pattern."""
    problems = []
    for op, arg in items:
        children: list[Any] = []
        loop = inside_loop
        if op in _REPEATS:
            _low, high, body = arg
            if high > 1:
                if inside_loop:
                    problems.append("a repeat nested in a repeat")
                if op is not sre_constants.POSSESSIVE_REPEAT:
                    problems.append(f"a backtracking repeat {op}")
                loop = True
            children = [body]
        elif op is sre_constants.SUBPATTERN:
            children = [arg[-1]]
        elif op is sre_constants.BRANCH:
            children = list(arg[1])
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            children = [arg[1]]
        for child in children:
            problems += _repeat_problems(list(child), inside_loop=loop)
    return problems


def _alternatives(items: list[tuple[Any, Any]]) -> list[list[tuple[Any, Any]]]:
    if len(items) == 1 and items[0][0] is sre_constants.BRANCH:
        return [list(branch) for branch in items[0][1][1]]
    return [items]


def _leading_run_problems(items: list[tuple[Any, Any]]) -> list[str]:
    """An alternative that starts with a run must always match once the run is read: otherwise
    every later start inside the same run reads it again (quadratic)."""
    problems = []
    for alternative in _alternatives(items):
        op, arg = alternative[0]
        if op in _REPEATS and arg[1] > 1:
            rest = alternative[1:]
            if any(not (o in _REPEATS and a[0] == 0) for o, a in rest):
                problems.append("starts with a run that can fail after it")
    return problems


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: p.pattern[:30])
def test_patterns_cannot_backtrack(pattern: re.Pattern[str]) -> None:
    parsed = list(sre_parse.parse(pattern.pattern, pattern.flags))
    assert _repeat_problems(parsed) + _leading_run_problems(parsed) == []


# Inputs built against the old patterns: runs that a quantifier reads and then fails on.
WORST_INPUTS = [
    "." * 20_000 + "x",
    "?!" * 10_000 + "x",
    "\n" * 20_000 + "x",
    "\n " * 10_000 + "x",
    "{" + " " * 20_000 + "x",
    "`" + "a" * 20_000,
    "def " + "a" * 20_000,
    "1" * 20_000 + "x",
]


@pytest.mark.parametrize("worst", WORST_INPUTS, ids=lambda t: repr(t[:6]))
def test_analysis_reads_a_bounded_prefix(worst: str) -> None:
    """Whatever follows the first MAX_ANALYSED_CHARS characters changes nothing: the input that
    reaches any pattern is bounded, and the reported length is the message's."""
    head = worst[:MAX_ANALYSED_CHARS]
    tail = " error, please help me, thanks!!" * 1000
    result, bounded = analyse(head + tail).as_dict(), analyse(head).as_dict()
    assert result.pop("chars") == len(head + tail)
    bounded.pop("chars")
    assert result == bounded


_OLD = {
    "sentences": re.compile(r"[.!?]+(?:\s|$)"),
    "list items": re.compile(r"(?m)^\s*(?:[-*•]|\d+[.)])\s+"),
    "code": re.compile(r"```|`[^`\n]+`|\bdef \w+\(|\bclass \w+[:(]|[{};]\s*$|Traceback \(most recent", re.M),
}


def test_linear_patterns_count_what_the_old_ones_counted() -> None:
    """On short random texts (where the old patterns were still quick) the counts agree."""
    rng = random.Random(14)
    alphabet = ["a", "b", " ", "\n", "\t", ".", "!", "?", "-", "*", "•", "1", ")", "`", "{", ";"]
    alphabet += ["def f(", "class C:", "```", "Traceback (most recent"]
    new = {"sentences": _SENTENCE_END, "list items": _LIST_ITEM, "code": _CODE}
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        for name, old in _OLD.items():
            if name == "code":
                assert bool(old.search(text)) == bool(new[name].search(text)), (name, text)
            else:
                assert len(old.findall(text)) == len(new[name].findall(text)), (name, text)
