"""Local, dependency-free analysis of a user message: intent, sentiment, topic tags."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

_WORD = re.compile(r"[a-z0-9']+")
_QUESTION_START = {
    "what",
    "why",
    "how",
    "when",
    "where",
    "who",
    "which",
    "is",
    "are",
    "can",
    "could",
    "do",
    "does",
    "did",
    "should",
    "would",
    "will",
}
_ACTION = {
    "please",
    "create",
    "make",
    "write",
    "generate",
    "build",
    "send",
    "run",
    "delete",
    "update",
    "fix",
    "book",
    "schedule",
    "set",
    "add",
    "remove",
    "show",
    "list",
    "find",
}
_PROBLEM = {
    "error",
    "bug",
    "broken",
    "crash",
    "crashes",
    "fails",
    "failed",
    "failing",
    "issue",
    "problem",
    "wrong",
    "exception",
    "doesn't",
    "not",
    "cannot",
    "can't",
    "stuck",
}
_POSITIVE = {
    "good",
    "great",
    "thanks",
    "thank",
    "love",
    "excellent",
    "awesome",
    "nice",
    "happy",
    "perfect",
    "helpful",
    "glad",
}
_NEGATIVE = {
    "bad",
    "terrible",
    "hate",
    "awful",
    "angry",
    "annoyed",
    "frustrated",
    "useless",
    "worst",
    "broken",
    "disappointed",
    "horrible",
    "upset",
}
_TAGS = {
    "code": {"python", "code", "function", "javascript", "sql", "api", "bug", "compile", "script"},
    "billing": {"invoice", "payment", "refund", "price", "billing", "charge", "subscription"},
    "account": {"login", "password", "account", "signup", "email", "username"},
    "data": {"database", "table", "query", "csv", "json", "data"},
    "security": {"security", "vulnerability", "breach", "token", "secret", "encrypt"},
}


@dataclass(frozen=True)
class Analysis:
    intent: str
    sentiment: str
    tags: list[str]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def analyse(text: str) -> Analysis:
    lowered = text.lower()
    words = _WORD.findall(lowered)
    word_set = set(words)
    if word_set & _PROBLEM and (
        word_set
        & {"error", "bug", "broken", "crash", "crashes", "fails", "failed", "failing", "exception", "stuck"}
    ):
        intent = "problem_report"
    elif lowered.rstrip().endswith("?") or (words and words[0] in _QUESTION_START):
        intent = "question"
    elif words and (words[0] in _ACTION or "please" in word_set):
        intent = "action_request"
    else:
        intent = "statement"
    score = len(word_set & _POSITIVE) - len(word_set & _NEGATIVE)
    sentiment = "positive" if score > 0 else "negative" if score < 0 else "neutral"
    tags = sorted(tag for tag, vocab in _TAGS.items() if word_set & vocab)
    return Analysis(intent=intent, sentiment=sentiment, tags=tags)
