"""Text out of one file, run alone in a subprocess under rlimits (see documents/extract/run.py).

``python -I child.py PATH KIND MAX_CHARS`` prints one JSON object on stdout:
``{"pages": N, "segments": [[page or null, heading, text], ...]}`` or
``{"error": "why"}``. Only the standard library, pypdf and python-docx: the
project is not importable here (``-I``), and nothing here trusts the file.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from html.parser import HTMLParser

BLANK = re.compile(r"\n\s*\n")
# The marks of a Markdown heading; the text after them is trimmed in Python (a lazy group before
# trailing "\s*#*\s*$" backtracked quadratically over a long line of " #": issue 14 item 1).
MD_HEADING_START = re.compile(r"#{1,6}\s++")
HEADING_CHARS = 300
# A DOCX is a zip: what its parts add up to once inflated (a zip bomb: far more).
MAX_EXPANDED_BYTES = 200 * 1024 * 1024


class TooMuchText(Exception):
    pass


class Out:
    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.chars = 0
        self.segments: list[list[object]] = []
        self.pages = 0

    def add(self, page: int | None, heading: str, text: str) -> None:
        text = text.strip()
        if not text:
            return
        self.chars += len(text)
        if self.chars > self.max_chars:
            raise TooMuchText(f"The document has more than {self.max_chars} characters of text.")
        self.segments.append([page, heading[:HEADING_CHARS], text])

    def paragraphs(self, page: int | None, heading: str, text: str) -> None:
        for part in BLANK.split(text):
            self.add(page, heading, part)


def pdf(path: str, out: Out) -> None:
    from pypdf import PdfReader

    reader = PdfReader(path)
    title = ""
    try:
        title = str(reader.metadata.get("/Title") or "") if reader.metadata is not None else ""
    except Exception:  # a broken info dictionary is not worth failing for
        title = ""
    for number, page in enumerate(reader.pages, start=1):
        out.pages = number
        out.paragraphs(number, title, page.extract_text() or "")


def docx(path: str, out: Out) -> None:
    import zipfile

    import docx as python_docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    with zipfile.ZipFile(path) as archive:
        expanded = sum(item.file_size for item in archive.infolist())
    if expanded > MAX_EXPANDED_BYTES:
        raise TooMuchText(
            f"The DOCX expands to {expanded // (1 << 20)} MB, "
            f"over the limit of {MAX_EXPANDED_BYTES >> 20} MB."
        )
    document = python_docx.Document(path)
    heading = ""
    body: list[str] = []

    def flush() -> None:
        if body:
            out.add(None, heading, "\n".join(body))
            body.clear()

    for block in document.element.body.iterchildren():
        tag = block.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = Paragraph(block, document)
            style = (paragraph.style.name if paragraph.style is not None else "") or ""
            text = paragraph.text.strip()
            if style.startswith(("Heading", "Title")) and text:
                flush()
                heading = text
            elif text:
                body.append(text)
        elif tag == "tbl":
            table = Table(block, document)
            for row in table.rows:
                body.append(" | ".join(cell.text.strip() for cell in row.cells))
    flush()
    out.pages = 1


class _Html(HTMLParser):
    BLOCKS = {"p", "div", "li", "tr", "br", "section", "article", "table", "pre", "blockquote", "dd", "dt"}
    SKIP = {"script", "style", "noscript", "template", "head"}

    def __init__(self, out: Out) -> None:
        super().__init__(convert_charrefs=True)
        self.out = out
        self.heading = ""
        self.text: list[str] = []
        self.in_heading: str | None = None
        self.heading_text: list[str] = []
        self.skipping = 0

    def flush(self) -> None:
        self.out.add(None, self.heading, " ".join("".join(self.text).split()))
        self.text = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.flush()
            self.in_heading = tag
            self.heading_text = []
        elif tag in self.BLOCKS:
            self.text.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag == self.in_heading:
            self.heading = " ".join("".join(self.heading_text).split())
            self.in_heading = None
        elif tag in ("p", "section", "article", "table", "pre", "blockquote", "ul", "ol"):
            self.flush()

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        (self.heading_text if self.in_heading else self.text).append(data)


def html(path: str, out: Out) -> None:
    parser = _Html(out)
    with open(path, encoding="utf-8", errors="replace") as handle:
        while True:
            piece = handle.read(1 << 16)
            if not piece:
                break
            parser.feed(piece)
    parser.close()
    parser.flush()
    out.pages = 1


def markdown(path: str, out: Out) -> None:
    heading = ""
    body: list[str] = []
    in_code = False

    def flush() -> None:
        out.paragraphs(None, heading, "\n".join(body))
        body.clear()

    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if line.lstrip().startswith("```"):
                in_code = not in_code
            match = None if in_code else MD_HEADING_START.match(line)
            if match:
                flush()
                heading = line[match.end() :].rstrip().rstrip("#").rstrip()
            else:
                body.append(line)
    flush()
    out.pages = 1


def text(path: str, out: Out) -> None:
    body = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.strip():
                body.append(line.rstrip("\n"))
            elif body:
                out.add(None, "", "\n".join(body))
                body = []
    out.add(None, "", "\n".join(body))
    out.pages = 1


def table(path: str, out: Out) -> None:
    csv.field_size_limit(1 << 20)
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        sample = handle.read(1 << 14)
        handle.seek(0)
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
        reader = csv.reader(handle, dialect)
        header = next(reader, [])
        rows = []
        for row in reader:
            cells = [
                f"{name.strip()}: {value.strip()}"
                for name, value in zip(header, row, strict=False)
                if value.strip()
            ]
            if cells:
                rows.append("; ".join(cells))
            if len(rows) >= 10:
                out.add(None, ", ".join(h.strip() for h in header), "\n".join(rows))
                rows = []
        out.add(None, ", ".join(h.strip() for h in header), "\n".join(rows))
    out.pages = 1


KINDS = {"pdf": pdf, "docx": docx, "html": html, "markdown": markdown, "text": text, "csv": table}


def main() -> None:
    path, kind, max_chars = sys.argv[1], sys.argv[2], int(sys.argv[3])
    out = Out(max_chars)
    try:
        KINDS[kind](path, out)
    except TooMuchText as exc:
        result: dict[str, object] = {"error": str(exc)}
    except MemoryError:
        result = {"error": "Reading the file needed more memory than allowed."}
    except RecursionError:
        result = {"error": "The file is nested too deeply to read."}
    except Exception as exc:  # any parser failure is the file's: report it, never crash silently
        result = {"error": f"The file could not be read ({type(exc).__name__}: {str(exc)[:200]})."}
    else:
        result = {"pages": out.pages, "segments": out.segments}
    out.segments = []
    sys.stdout.write(json.dumps(result, ensure_ascii=False))
    sys.stdout.flush()


if __name__ == "__main__":
    sys.setrecursionlimit(5000)
    main()
