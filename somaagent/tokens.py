"""Token counts estimated from the length of text: one rule for prompts, budgets and usage.

About four characters make a token in the languages and models this serves; the
count rounds up, so an estimate never says a non-empty text is free.
"""

from __future__ import annotations

CHARS_PER_TOKEN = 4


def tokens_of_chars(chars: int) -> int:
    """Tokens for ``chars`` characters of text (rounded up)."""
    return (max(0, chars) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def estimate_tokens(text: str) -> int:
    """Tokens for ``text``."""
    return tokens_of_chars(len(text))
