"""The one way untrusted JSON and text come in: bounded depth, text PostgreSQL can store.

Every door parses JSON with ``json_loads`` (the DRF parser of ``settings.REST_FRAMEWORK``,
the WebSocket frames, the OpenAI-compatible front door), so one hostile document is
answered the same everywhere: 400 ``invalid_json`` for anything that is not plain JSON
(malformed, not UTF-8, ``NaN``/``Infinity``, nested deeper than ``MAX_JSON_DEPTH``: a
document nested 100,000 deep used to escape as ``RecursionError`` and a 500), and 400
``validation_error`` naming the field for a string or key PostgreSQL cannot store (a NUL
character or a lone surrogate, which used to reach the database as a ``DataError`` 500).
``text_storable`` is the same text check for what does not come as JSON: ``MultiPartParser``
refuses a file name with NUL (400) where Django would silently drop the character.
``JsonFormField`` is the same parse for the admin's JSON fields (every ``models.JSONField`` in the
admin, somaagent/project/admin_app.py): the form shows the error instead of a 500.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput, JSONString
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, DataAndFiles, get_encoding  # type: ignore[attr-defined]

from somaagent.errors import SomaError, ValidationFailed

MAX_JSON_DEPTH = 64
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class InvalidJson(ValidationFailed):
    code = "invalid_json"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def text_storable(value: str, *, field: str) -> str:
    """``value`` unchanged, or 400 ``validation_error`` naming ``field`` when it holds a NUL or a
    lone surrogate."""
    if _UNSTORABLE.search(value):
        message = "Contains a character that cannot be stored (NUL or an unpaired surrogate)."
        field = field[:200]  # a path built of hostile keys is echoed, not its whole length
        raise ValidationFailed(f"{field}: {message}", details={field: [message]})
    return value


def text_scrubbed(value: str) -> str:
    """``value`` without the characters ``text_storable`` rejects (for text kept as evidence)."""
    return _UNSTORABLE.sub("", value)


def _check(doc: Any) -> None:
    """Depth and text of a parsed document, iteratively (no recursion to exhaust)."""
    stack: list[tuple[Any, int, str]] = [(doc, 0, "body")]
    while stack:
        node, depth, where = stack.pop()
        if isinstance(node, str):
            text_storable(node, field=where)
            continue
        if isinstance(node, dict):
            items: Any = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            continue
        if depth >= MAX_JSON_DEPTH:
            raise InvalidJson(
                f"The JSON is nested deeper than {MAX_JSON_DEPTH} levels.",
                details={"max_depth": MAX_JSON_DEPTH},
            )
        for key, value in items:
            path = f"{where}.{key}" if where != "body" else str(key)
            if isinstance(key, str):
                text_storable(key, field=path)
            stack.append((value, depth + 1, path))


def json_loads(raw: bytes | str, *, what: str = "body") -> Any:
    """The parsed document, or InvalidJson / ValidationFailed (both 400)."""
    try:
        doc = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise InvalidJson(
            f"The JSON is nested deeper than {MAX_JSON_DEPTH} levels.",
            details={"max_depth": MAX_JSON_DEPTH},
        ) from None
    except (ValueError, UnicodeDecodeError):  # JSONDecodeError is a ValueError
        raise InvalidJson(f"The {what} is not valid JSON.") from None
    _check(doc)
    return doc


class JsonParser(BaseParser):
    """DRF's JSON parser through ``json_loads`` (settings.REST_FRAMEWORK's only parser)."""

    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read() if stream is not None else b""
        charset = get_encoding(parser_context or {})  # text codecs only (no bz2_codec bombs)
        try:
            text = raw.decode(charset)
        except (LookupError, UnicodeDecodeError):
            raise InvalidJson(f"The body is not valid {charset} text.") from None
        return json_loads(text)


class _NamesChecked(DjangoMultiPartParser):
    def sanitize_file_name(self, file_name: str) -> str | None:
        text_storable(file_name, field="file")
        return super().sanitize_file_name(file_name)


class MultiPartParser(BaseParser):
    """DRF's multipart parser, with file names checked by ``text_storable`` (400, not altered)."""

    media_type = "multipart/form-data"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        parser_context = parser_context or {}
        request = parser_context["request"]
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        parser = _NamesChecked(meta, stream, request.upload_handlers, get_encoding(parser_context))
        try:
            data, files = parser.parse()
        except MultiPartParserError as exc:
            raise ParseError(f"Multipart form parse error - {exc}") from None
        return DataAndFiles(data, files)


class JsonFormField(forms.JSONField):
    """Django's form JSON field, parsed by ``json_loads``: deep nesting, NaN, a NUL or a lone
    surrogate is the form's error, not a RecursionError or a database DataError (a 500)."""

    def to_python(self, value: Any) -> Any:
        if self.disabled or value in self.empty_values or isinstance(value, list | dict | int | float):
            return super().to_python(value)
        try:
            converted = json_loads(value, what="value")
        except SomaError as exc:
            raise ValidationError(exc.message, code="invalid") from None
        return JSONString(converted) if isinstance(converted, str) else converted

    def bound_data(self, data: Any, initial: Any) -> Any:
        if self.disabled or data is None:
            return super().bound_data(data, initial)
        try:
            return json_loads(data, what="value")
        except SomaError:
            return InvalidJSONInput(data)
