"""Sample files written by the tests: a PDF of several pages (hand-built, no library), a DOCX
(python-docx), and hostile files (a zip bomb in a DOCX, a deeply nested PDF)."""

from __future__ import annotations

import io
import zipfile


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf(pages: list[list[str]], *, title: str = "") -> bytes:
    """A valid PDF: one page per item, each line of the page as one line of Helvetica text."""
    objects: list[bytes] = []
    count = len(pages)
    font_id = 3 + 2 * count
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(count))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode())
    for i, lines in enumerate(pages):
        content_id = 4 + 2 * i
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_id} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        ops = ["BT", "/F1 11 Tf", "14 TL", "50 740 Td"]
        for line in lines:
            ops.append(f"({_escape(line)}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    info_id = len(objects) + 1
    objects.append(f"<< /Title ({_escape(title)}) >>".encode())
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\n" % (len(objects) + 1, info_id))
    out.write(b"startxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def nested_pdf(depth: int = 200_000) -> bytes:
    """A PDF whose page resources hold an array nested ``depth`` levels deep."""
    body = pdf([["nested"]])
    bomb = b"[" * depth + b"]" * depth
    return body.replace(b"/MediaBox [0 0 612 792]", b"/MediaBox [0 0 612 792] /Bomb " + bomb, 1)


def docx(blocks: list[tuple[str, str]]) -> bytes:
    """A DOCX of (style, text) paragraphs: style 'h1'/'h2' is a heading, anything else body text."""
    import docx as python_docx

    document = python_docx.Document()
    for style, text in blocks:
        if style in ("h1", "h2"):
            document.add_heading(text, level=int(style[1]))
        else:
            document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def zip_bomb_docx(expanded_mb: int = 300) -> bytes:
    """A DOCX whose document.xml inflates to about ``expanded_mb`` MB."""
    good = zipfile.ZipFile(io.BytesIO(docx([("p", "bomb")])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bomb:
        for item in good.infolist():
            if item.filename == "word/document.xml":
                head = good.read(item.filename)
                cut = head.index(b"<w:body>") + len(b"<w:body>")
                with bomb.open(item.filename, "w", force_zip64=True) as handle:
                    handle.write(head[:cut])
                    paragraph = b"<w:p><w:r><w:t>bomb</w:t></w:r></w:p>"
                    block = paragraph * ((1 << 20) // len(paragraph))
                    for _ in range(expanded_mb):
                        handle.write(block)
                    handle.write(head[cut:])
            else:
                bomb.writestr(item, good.read(item.filename))
    return out.getvalue()
