"""The local analyser: intent, sentiment, tags and complexity over a table of messages."""

from __future__ import annotations

import pytest

from conversations.analysis import analyse


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
