"""A stored file sent back to a browser without letting it act as a page of this site.

Used for chat attachments (conversations) and documents' originals (documents): the
bytes with the type they were stored with, ``nosniff`` so the browser never guesses
another, and a CSP ``sandbox`` with ``default-src 'none'`` so that even a file shown
inline runs no script, loads nothing and has no origin (no cookies, no storage, no
reading of this site). ``inline`` is for types that cannot be a page (images, PDF,
plain text); everything else is an attachment, saved rather than shown. Chromium's
PDF viewer (checked with 156) shows a PDF under this CSP and honours ``#page=N``.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.utils.http import content_disposition_header

SANDBOX = "sandbox; default-src 'none'"


def file_response(
    content: bytes, *, content_type: str, filename: str, inline: bool = False, max_age: int = 300
) -> HttpResponse:
    """``content`` as ``content_type``, shown inline or saved as ``filename``, sandboxed."""
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(not inline, filename) or "attachment"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = SANDBOX
    response["Cache-Control"] = f"private, max-age={max_age}"
    return response
