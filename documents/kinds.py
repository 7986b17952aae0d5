"""Which parser reads an upload: from its bytes first, then its declared type and name.

Accepted: PDF, DOCX, HTML, Markdown, plain text, CSV. A PDF or DOCX must carry
its signature; the text kinds must be UTF-8 without NUL characters. Anything
else is refused (415) before it is stored.
"""

from __future__ import annotations

import mimetypes

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TEXT_KINDS = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/plain": "text",
    "text/csv": "csv",
}
EXTENSIONS = {
    "pdf": PDF,
    "docx": DOCX,
    "html": "text/html",
    "htm": "text/html",
    "md": "text/markdown",
    "markdown": "text/markdown",
    "txt": "text/plain",
    "text": "text/plain",
    "csv": "text/csv",
}
ACCEPTED = sorted({PDF, DOCX, *TEXT_KINDS})


def _declared(declared: str | None, filename: str) -> str:
    mime = (declared or "").split(";", 1)[0].strip().lower()
    if mime in (PDF, DOCX, *TEXT_KINDS):
        return mime
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if ext in EXTENSIONS:
        return EXTENSIONS[ext]
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return (guessed or mime or "application/octet-stream")[:100]


def _utf8_text(content: bytes) -> bool:
    if b"\x00" in content:
        return False
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def classify(*, content: bytes, declared: str | None, filename: str) -> tuple[str, str] | str:
    """``(content type, parser kind)`` of an acceptable upload, or why it is refused."""
    mime = _declared(declared, filename)
    if content.startswith(b"%PDF-"):
        return PDF, "pdf"
    if content.startswith(b"PK\x03\x04"):
        if mime == DOCX or b"word/" in content[:4096] or b"[Content_Types].xml" in content[:4096]:
            return DOCX, "docx"
        return "This archive is not a DOCX document."
    if mime in (PDF, DOCX):
        return f"The file does not look like a {'PDF' if mime == PDF else 'DOCX'}."
    if mime not in TEXT_KINDS:
        return f"Files of type {mime} are not accepted."
    if not _utf8_text(content):
        return "The file is not UTF-8 text."
    return mime, TEXT_KINDS[mime]
