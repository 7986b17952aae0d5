"""What an uploaded file really is, and whether it must be quarantined.

The rule (docs/api.md, "Attachments"): an upload is **quarantined** when

1. its bytes are an executable (ELF, Windows PE ``MZ``, Mach-O, Java class,
   or a ``#!`` script) or its name has an executable extension; or
2. its declared type has a signature we know (PNG, JPEG, GIF, WebP, PDF, ZIP,
   gzip) and the bytes do not carry it; or
3. its declared type is text (``text/*``, JSON, XML) and the bytes are not
   UTF-8 text without NUL characters.

Everything else is **clean**: a type we cannot check is taken at its word,
within the allowed list. Quarantined files are kept for staff to inspect in
admin, but they cannot be sent to the model or downloaded through the API.
"""

from __future__ import annotations

SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "application/pdf": (b"%PDF-",),
    "application/zip": (b"PK\x03\x04", b"PK\x05\x06"),
    "application/gzip": (b"\x1f\x8b",),
}
EXECUTABLE_MAGIC = (
    b"\x7fELF",
    b"MZ",
    b"\xfe\xed\xfa\xce",
    b"\xce\xfa\xed\xfe",
    b"\xfe\xed\xfa\xcf",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
    b"#!",
)
EXECUTABLE_EXTENSIONS = frozenset(
    {
        "exe", "dll", "so", "dylib", "bin", "elf", "com", "scr", "msi", "msp", "bat", "cmd", "ps1",
        "psm1", "vbs", "vbe", "wsf", "jar", "apk", "app", "deb", "rpm", "sh", "bash", "zsh", "run",
        "cpl", "lnk",
    }
)  # fmt: skip
TEXT_TYPES = frozenset({"application/json", "application/xml", "application/x-ndjson"})


def _is_webp(content: bytes) -> bool:
    return content[:4] == b"RIFF" and content[8:12] == b"WEBP"


def sniff(content: bytes) -> str | None:
    """The type the bytes announce: a known signature, ``text/plain`` for UTF-8 text, else None."""
    if _is_webp(content):
        return "image/webp"
    for mime, magics in SIGNATURES.items():
        if content.startswith(magics):
            return mime
    if looks_like_text(content):
        return "text/plain"
    return None


def looks_like_text(content: bytes) -> bool:
    if b"\x00" in content:
        return False
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def is_text_type(mime: str) -> bool:
    return mime.startswith("text/") or mime in TEXT_TYPES or mime.endswith(("+json", "+xml"))


def quarantine_reason(*, filename: str, declared_mime: str, content: bytes) -> str:
    """Why the upload must be quarantined, or '' when it is clean."""
    if content.startswith(EXECUTABLE_MAGIC):
        return "The file is an executable or a script."
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if extension in EXECUTABLE_EXTENSIONS:
        return f"Files ending in .{extension} are executables or scripts."
    sniffed = sniff(content)
    if declared_mime == "image/webp" or declared_mime in SIGNATURES:
        if sniffed != declared_mime:
            return f"The content is {sniffed or 'not recognised'}, not the declared {declared_mime}."
    elif is_text_type(declared_mime) and not looks_like_text(content):
        return f"The content is not UTF-8 text, as the declared {declared_mime} would be."
    return ""
