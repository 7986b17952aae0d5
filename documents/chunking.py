"""Segments (page, heading, text) into chunks of about ``TARGET`` characters.

A chunk never spans two pages or two headings, so each one can be cited with
its page and section. Long paragraphs are cut at sentence or word boundaries;
short ones are joined up to the target.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

TARGET = 1000
MAX = 1200
MIN_TAIL = 200
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class ChunkText:
    page: int | None
    heading: str
    text: str


def _pieces(text: str) -> Iterator[str]:
    """``text`` cut into parts of at most ``MAX`` characters, at sentence ends, else spaces."""
    while len(text) > MAX:
        window = text[:MAX]
        cut = max((m.end() for m in SENTENCE_END.finditer(window) if m.end() >= TARGET // 2), default=0)
        if not cut:
            cut = window.rfind(" ", TARGET // 2) + 1 or MAX
        yield text[:cut].strip()
        text = text[cut:].lstrip()
    if text.strip():
        yield text.strip()


def chunk_segments(segments: Iterable[tuple[int | None, str, str]]) -> list[ChunkText]:
    chunks: list[ChunkText] = []
    parts: list[str] = []
    size = 0
    place: tuple[int | None, str] | None = None

    def flush() -> None:
        nonlocal parts, size
        if parts and place is not None:
            chunks.append(ChunkText(page=place[0], heading=place[1], text="\n\n".join(parts)))
        parts, size = [], 0

    for page, heading, text in segments:
        if (page, heading) != place:
            flush()
            place = (page, heading)
        for piece in _pieces(text):
            if size and size + len(piece) > TARGET and size >= MIN_TAIL:
                flush()
            parts.append(piece)
            size += len(piece) + 2
            if size >= TARGET:
                flush()
    flush()
    return chunks
