"""The parser subprocess: each accepted type yields text with headings and pages; hostile files
end with a reason in bounded time; chunks keep their heading and page."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from documents.chunking import MAX, chunk_segments
from documents.extract.run import Extracted, ParseLimits, extract
from documents.kinds import DOCX, PDF, classify
from tests.documents import samples


def run(tmp_path: Path, content: bytes, kind: str, limits: ParseLimits | None = None) -> Extracted:
    path = tmp_path / "upload"
    path.write_bytes(content)
    return extract(path=str(path), kind=kind, limits=limits or ParseLimits())


def test_pdf_pages_are_numbered(tmp_path):
    content = samples.pdf(
        [["Refunds take five days."], ["Shipping is free over fifty euros."]], title="Guide"
    )
    got = run(tmp_path, content, "pdf")
    assert got.error == "" and got.pages == 2
    assert got.segments == [
        (1, "Guide", "Refunds take five days."),
        (2, "Guide", "Shipping is free over fifty euros."),
    ]


def test_docx_headings_and_tables(tmp_path):
    content = samples.docx(
        [("h1", "Leave"), ("p", "Twenty days a year."), ("h2", "Sick leave"), ("p", "Unlimited.")]
    )
    got = run(tmp_path, content, "docx")
    assert got.error == ""
    assert got.segments == [(None, "Leave", "Twenty days a year."), (None, "Sick leave", "Unlimited.")]


def test_html_markdown_text_csv(tmp_path):
    html = (
        b"<html><head><style>p{}</style><script>alert(1)</script></head><body><h1>Title</h1>"
        b"<p>First &amp; one.</p><h2>Next</h2><div>Second</div></body></html>"
    )
    got = run(tmp_path, html, "html")
    assert got.error == "" and got.segments == [(None, "Title", "First & one."), (None, "Next", "Second")]
    md = b"# Install\n\nRun make.\n\n```\n# not a heading\n```\n## Use\nOpen the chat.\n"
    got = run(tmp_path, md, "markdown")
    assert [(s[1], s[2]) for s in got.segments] == [
        ("Install", "Run make."),
        ("Install", "```\n# not a heading\n```"),
        ("Use", "Open the chat."),
    ]
    got = run(tmp_path, b"one\ntwo\n\nthree\n", "text")
    assert [s[2] for s in got.segments] == ["one\ntwo", "three"]
    got = run(tmp_path, b"name,city\nAda,London\nLinus,Helsinki\n", "csv")
    assert got.segments == [(None, "name, city", "name: Ada; city: London\nname: Linus; city: Helsinki")]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (samples.zip_bomb_docx(), "expands to 300 MB"),
        (samples.nested_pdf(), "could not be read"),
        (b"%PDF-1.4\n" + b"garbage" * 1000, "could not be read"),
    ],
    ids=["zip-bomb-docx", "nested-pdf", "broken-pdf"],
)
def test_hostile_files_fail_with_a_reason(tmp_path, content, reason):
    kind = "docx" if content.startswith(b"PK") else "pdf"
    started = time.monotonic()
    got = run(tmp_path, content, kind)
    assert reason in got.error and got.segments == []
    assert time.monotonic() - started < 60


def test_a_zip_bomb_past_the_size_check_hits_the_memory_limit(tmp_path, monkeypatch):
    """The declared sizes could lie: the address-space limit still stops the parser."""
    path = Path(__file__).parents[2] / "documents" / "extract" / "child.py"
    assert "MAX_EXPANDED_BYTES = 200" in path.read_text()
    got = run(tmp_path, samples.zip_bomb_docx(150), "docx", ParseLimits(memory_bytes=256 * 1024 * 1024))
    assert got.error and got.segments == []


def test_wall_time_and_cpu_limits_end_the_parser(tmp_path):
    content = samples.pdf([["x"]])
    started = time.monotonic()
    got = run(tmp_path, content, "pdf", ParseLimits(wall_seconds=0.05))
    assert "took longer than 0.05 s" in got.error
    assert time.monotonic() - started < 5
    tags = b"<p><b>a</b></p>" * 2_000_000  # 30 MB of markup: seconds of html.parser's CPU
    got = run(tmp_path, tags, "html", ParseLimits(cpu_seconds=1, wall_seconds=30, max_chars=10**9))
    assert "more than 1 s of CPU" in got.error
    big = b"word " * 1000
    got = run(tmp_path, big, "text", ParseLimits(max_chars=1000))
    assert "more than 1000 characters" in got.error


def test_classify_trusts_bytes_over_names():
    assert classify(content=samples.pdf([["a"]]), declared="text/plain", filename="a.txt") == (PDF, "pdf")
    assert classify(content=samples.docx([("p", "a")]), declared=None, filename="a.docx") == (DOCX, "docx")
    assert classify(content=b"hello", declared=PDF, filename="a.pdf") == "The file does not look like a PDF."
    assert classify(content=b"\x89PNG\r\n", declared="image/png", filename="a.png") == (
        "Files of type image/png are not accepted."
    )
    assert (
        classify(content=b"caf\xe9", declared="text/plain", filename="a.txt") == "The file is not UTF-8 text."
    )
    assert classify(content=b"# hi", declared=None, filename="notes.md") == ("text/markdown", "markdown")


def test_chunks_keep_heading_and_page_and_size():
    long = " ".join(f"Sentence number {i} is here." for i in range(200))
    chunks = chunk_segments([(1, "A", long), (2, "A", "short one"), (2, "A", "short two"), (2, "B", "other")])
    first = [c for c in chunks if c.page == 1]
    assert len(first) > 3 and all(len(c.text) <= MAX for c in first) and all(c.heading == "A" for c in first)
    assert " ".join(c.text for c in first).split() == long.split()  # nothing lost, nothing repeated
    assert [(c.page, c.heading, c.text) for c in chunks if c.page == 2] == [
        (2, "A", "short one\n\nshort two"),
        (2, "B", "other"),
    ]


def test_a_long_heading_line_is_read_in_linear_time(tmp_path):
    """Issue 14 item 1 in the parser: the old heading pattern (a lazy group, then '\\s*#*\\s*$')
    backtracked cubically over a run of spaces that does not end the line: 2,000 spaces took
    13 s of CPU, 4,000 took 114 s. Now a line of 100,000 is read under a one-second CPU limit."""
    content = b"# a" + b" " * 100_000 + b"x\n\nbody\n"
    got = run(tmp_path, content, "markdown", ParseLimits(cpu_seconds=1, wall_seconds=30, max_chars=10**7))
    assert got.error == ""
    [(_, heading, body)] = got.segments
    assert heading.startswith("a  ") and body == "body"
