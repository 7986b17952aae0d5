"""Local, dependency-free analysis of a user message: intent, sentiment, topic tags, complexity.

Rules over word lists, nothing downloaded and nothing sent anywhere, so it runs
on every turn in well under a millisecond. ``complexity`` is a score in
[0, 1] built from length, technical vocabulary, structure (several questions,
steps, lists) and code; the escalation rules read it (conversations.turn.escalation).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

# Linear time on any input (issue 14): every repeat is possessive (no backtracking into it), none
# is nested in another, and a pattern starts with one character or an anchor (or, for the word
# tokenizer, with a run that always matches), so an attempt never rescans a run that an earlier
# start already covered. The sentence end is the last
# mark of a run (the one followed by a space), counted once per run as before. No analysis ever
# reads more than ``MAX_ANALYSED_CHARS`` characters of a message.
MAX_ANALYSED_CHARS = 8000
_WORD = re.compile(r"[a-z0-9]++(?:'[a-z]++)?")
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
_LIST_ITEM = re.compile(r"(?m)^[^\S\n]*+(?:[-*•]|\d++[.)])\s")
_CODE = re.compile(
    r"```|`[^`\n]++`|\bdef \w++\(|\bclass \w++[:(]|[{};][^\S\n]*+$|Traceback \(most recent", re.M
)
PATTERNS = (_WORD, _SENTENCE_END, _LIST_ITEM, _CODE)


def _vocab(words: str) -> frozenset[str]:
    return frozenset(words.split())


_QUESTION_START = _vocab(
    "what why how when where who whom whose which is are am can could do does did should "
    "would will shall may might has have was were isn't aren't doesn't"
)
_ACTION_VERBS = _vocab(
    "create make write generate build send run delete update fix book schedule set add remove "
    "show list find draft translate summarise summarize explain compare convert calculate "
    "refactor deploy install configure check review tell give help plan design implement "
    "rewrite cancel order open close reset change move copy rename search look prepare sort"
)
_REQUEST_LEADS = (
    ("can", "you"),
    ("could", "you"),
    ("would", "you"),
    ("will", "you"),
    ("i", "need", "you"),
    ("i", "want", "you"),
    ("i'd", "like", "you"),
    ("help", "me"),
    ("please",),
)
_PROBLEM_STRONG = _vocab(
    "error errors bug bugs broken crash crashes crashed crashing fails failed failing failure "
    "exception traceback stuck outage timeout timeouts freezes frozen hangs unresponsive "
    "corrupted"
)
_PROBLEM_PHRASES = (
    "doesn't work",
    "does not work",
    "not working",
    "stopped working",
    "won't start",
    "can't log",
    "cannot log",
    "can't access",
    "cannot access",
    "went wrong",
)
_POSITIVE = _vocab(
    "good great thanks thank love excellent awesome nice happy perfect helpful glad amazing "
    "wonderful fantastic pleased appreciate appreciated brilliant works solved cool"
)
_NEGATIVE = _vocab(
    "bad terrible hate awful angry annoyed annoying frustrated frustrating useless worst "
    "broken disappointed disappointing horrible upset furious ridiculous unacceptable slow "
    "poor sad worried confusing confused wrong"
)
_NEGATORS = _vocab("not no never don't doesn't didn't isn't wasn't aren't can't cannot won't hardly")
_INTENSIFIERS = _vocab("very really so extremely super totally absolutely")
_POSITIVE_EMOJI = (":)", ":-)", ":d", "😀", "🙂", "😊", "👍", "❤")
_NEGATIVE_EMOJI = (":(", ":-(", "😠", "😡", "🙁", "😞", "👎")

TAGS: dict[str, frozenset[str]] = {
    "code": _vocab(
        "python code function javascript typescript sql api bug compile compiler script java rust "
        "golang regex class method variable library package import stacktrace traceback debug "
        "refactor"
    ),
    "data": _vocab("database table query csv json data dataset schema index postgres mysql etl"),
    "infrastructure": _vocab(
        "server deploy deployment docker kubernetes k8s cluster network dns latency cpu memory "
        "disk nginx linux cloud aws gcp azure outage"
    ),
    "security": _vocab(
        "security vulnerability breach secret encrypt encryption leak exploit "
        "malware phishing attack cve firewall permissions"
    ),
    "billing": _vocab("invoice payment refund price pricing billing charge charged subscription plan"),
    "account": _vocab("login logout password account signup username profile verify 2fa mfa"),
    "legal": _vocab("contract legal lawyer gdpr compliance liability license licence terms"),
    "math": _vocab("equation integral derivative probability proof theorem matrix calculate"),
}
_TECHNICAL_TAGS = frozenset({"code", "data", "infrastructure", "security", "math"})


@dataclass(frozen=True)
class Analysis:
    intent: str
    sentiment: str
    tags: list[str]
    complexity: float
    chars: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _starts_with(words: list[str], lead: tuple[str, ...]) -> bool:
    return tuple(words[: len(lead)]) == lead


def _intent(lowered: str, words: list[str], word_set: set[str]) -> str:
    if word_set & _PROBLEM_STRONG or any(p in lowered for p in _PROBLEM_PHRASES):
        return "problem_report"
    for lead in _REQUEST_LEADS:
        if _starts_with(words, lead):
            rest = [w for w in words[len(lead) : len(lead) + 3] if w not in ("to", "please", "just")]
            if lead == ("please",) or (rest and rest[0] in _ACTION_VERBS):
                return "action_request"
    if words and words[0] in _ACTION_VERBS:
        return "action_request"
    if lowered.rstrip().endswith("?") or (words and words[0] in _QUESTION_START):
        return "question"
    if "please" in word_set:
        return "action_request"
    return "statement"


def _sentiment(lowered: str, words: list[str]) -> str:
    score = 0.0
    for i, word in enumerate(words):
        polarity = 1 if word in _POSITIVE else -1 if word in _NEGATIVE else 0
        if not polarity:
            continue
        window = words[max(0, i - 3) : i]
        if any(w in _NEGATORS for w in window):
            polarity = -polarity
        weight = 1.5 if i and words[i - 1] in _INTENSIFIERS else 1.0
        score += polarity * weight
    score += sum(lowered.count(e) for e in _POSITIVE_EMOJI)
    score -= sum(lowered.count(e) for e in _NEGATIVE_EMOJI)
    if score and "!!" in lowered:
        score *= 1.5
    return "positive" if score > 0.5 else "negative" if score < -0.5 else "neutral"


def _complexity(text: str, words: list[str], tags: list[str]) -> float:
    if not words:
        return 0.0
    length = min(len(words) / 150, 1.0)
    technical_terms = sum(1 for w in words if any(w in TAGS[t] for t in _TECHNICAL_TAGS))
    technical = min(technical_terms / 6, 1.0)
    parts = len(_SENTENCE_END.findall(text)) + len(_LIST_ITEM.findall(text)) + text.count("?")
    steps = sum(1 for w in words if w in {"then", "also", "additionally", "finally", "first", "second"})
    structure = min((max(parts - 1, 0) + steps) / 8, 1.0)
    code = 1.0 if _CODE.search(text) else 0.0
    score = 0.35 * length + 0.25 * technical + 0.2 * structure + 0.2 * code
    return round(min(score, 1.0), 2)


def analyse(text: str) -> Analysis:
    """The analysis of the message's first ``MAX_ANALYSED_CHARS`` characters (``chars`` is its length)."""
    chars = len(text)
    text = text[:MAX_ANALYSED_CHARS]
    lowered = text.lower()
    words = _WORD.findall(lowered)
    word_set = set(words)
    tags = sorted(tag for tag, vocab in TAGS.items() if word_set & vocab)
    return Analysis(
        intent=_intent(lowered, words, word_set),
        sentiment=_sentiment(lowered, words),
        tags=tags,
        complexity=_complexity(text, words, tags),
        chars=chars,
    )


def technical_tags() -> frozenset[str]:
    return _TECHNICAL_TAGS
