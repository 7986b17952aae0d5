"""Hostile JSON on every HTTP door (issue 14 items 2 and 6): nested 100,000 deep, NaN, text the
database cannot store. Each is a 400 in the door's error shape and writes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conversations.models import Session
from somaagent.identity.apikeys import api_key_create
from somaagent.identity.scopes import ALL_SCOPES
from tests.conversations.api_support import Api, assert_error, row_counts

pytestmark = pytest.mark.django_db

DEEP = b"[" * 100_000 + b"]" * 100_000  # 200 kB: under SOMA_MAX_REQUEST_BYTES, far past recursion
DEEP_OBJECT = b'{"a":' * 40_000 + b"1" + b"}" * 40_000
NESTED_65 = json.dumps({"message": "hi", "metadata": json.loads("[" * 64 + "]" * 64)}).encode()


@pytest.fixture
def session(me: Any) -> Session:
    return Session.objects.create(tenant=me.tenant, title="mine")


@pytest.fixture
def api(me: Any) -> Api:
    """A key with every scope, so that the admin endpoints parse the body too."""
    _, raw = api_key_create(tenant=me.tenant, name="all", scopes=list(ALL_SCOPES))
    return Api(key=raw)


def _doors(session: Session) -> list[tuple[str, str]]:
    """Every endpoint that takes a JSON body."""
    return [
        ("post", "/v1/session/message"),
        ("patch", f"/v1/sessions/{session.pk}"),
        ("post", "/v1/keys"),
        ("post", "/v1/auth/token"),
        ("post", "/v1/auth/token/refresh"),
        ("post", "/v1/chat/completions"),
    ]


def _code(response: Any) -> str:
    """The error code in SPEC §6's shape, or in OpenAI's at /v1/chat/completions."""
    body = json.loads(response.content)
    return str(body["error"]["code"])


@pytest.mark.parametrize("raw", [DEEP, DEEP_OBJECT, NESTED_65], ids=["array", "object", "65-levels"])
def test_deeply_nested_json_is_400_invalid_json_everywhere(api: Api, session: Session, raw: bytes) -> None:
    for method, path in _doors(session):
        before = row_counts()
        response = api.call(method, path, raw=raw)
        assert response.status_code == 400, (path, response.status_code, response.content[:300])
        assert _code(response) == "invalid_json", path
        assert row_counts() == before, path


@pytest.mark.parametrize("raw", [b'{"message": NaN}', b'{"message": "hi", "metadata": {"x": -Infinity}}'])
def test_non_json_constants_are_400_invalid_json(api: Api, raw: bytes) -> None:
    assert_error(api.post_message(raw=raw), 400, "invalid_json")


def test_sixty_four_levels_are_still_accepted(api: Api) -> None:
    metadata = json.loads("[" * 62 + "]" * 62)  # with the body and metadata: 64 levels
    response = api.post_message({"message": "hi", "metadata": {"deep": metadata}})
    assert response.status_code == 202, response.content[:300]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": "a\x00b"}, "message"),
        ({"message": "hi", "metadata": {"note": "a\x00b"}}, "metadata.note"),
        ({"message": "hi", "metadata": {"a\x00": 1}}, "metadata.a\x00"),
        ({"message": "hi", "metadata": {"list": ["ok", "\x00"]}}, "metadata.list.1"),
        ({"message": "hi \ud800"}, "message"),
    ],
)
def test_text_the_database_cannot_store_is_400(api: Api, body: dict[str, Any], field: str) -> None:
    before = row_counts()
    error = assert_error(api.post_message(raw=json.dumps(body).encode()), 400, "validation_error")
    assert field in error["details"], error
    assert row_counts() == before


def test_nul_in_a_title_or_the_openai_door_is_400(api: Api, session: Session) -> None:
    path = f"/v1/sessions/{session.pk}"
    assert_error(api.call("patch", path, json_body={"title": "a\x00b"}), 400, "validation_error")
    session.refresh_from_db()
    assert session.title == "mine"
    before = row_counts()
    body = {"model": "somaagent", "messages": [{"role": "user", "content": "a\x00b"}]}
    response = api.call("post", "/v1/chat/completions", json_body=body)
    assert response.status_code == 400 and _code(response) == "validation_error"
    assert row_counts() == before


@pytest.mark.parametrize("filename", [b"a\x00b.txt", b"\x00"])
def test_an_attachment_name_with_nul_is_400(api: Api, filename: bytes) -> None:
    boundary = b"hostile"
    body = (
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
        b"Content-Type: text/plain\r\n\r\nhello\r\n--" + boundary + b"--\r\n"
    )
    before = row_counts()
    response = api.call(
        "post", "/v1/attachments", raw=body, content_type=f"multipart/form-data; boundary={boundary.decode()}"
    )
    assert_error(response, 400, "validation_error")
    assert row_counts() == before


def test_a_key_rate_limit_past_the_column_is_400(api: Api) -> None:
    """Found by the long fuzz: 71,366,529,577 overflowed the 32-bit column (DataError, 500)."""
    response = api.call("post", "/v1/keys", json_body={"rate_limit_per_minute": 71_366_529_577})
    error = assert_error(response, 400, "validation_error")
    assert "rate_limit_per_minute" in error["details"]
    # A tenant admin's ceiling is the server's SOMA_RATE_LIMIT_PER_MINUTE (600 here).
    assert api.call("post", "/v1/keys", json_body={"rate_limit_per_minute": 600}).status_code == 201


def test_numbers_for_text_and_repeated_form_fields_are_400(api: Api) -> None:
    """Found by the long fuzz: DRF turned a number into a key name; the last of two session_id
    form fields won silently."""
    error = assert_error(api.call("post", "/v1/keys", json_body={"name": 2.6e16}), 400, "validation_error")
    assert "name" in error["details"]
    boundary = "twice"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="session_id"\r\n\r\n{value}\r\n'
        for value in ("false", "")
    ]
    body = "".join(parts) + (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        f"Content-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n"
    )
    before = row_counts()
    response = api.call(
        "post", "/v1/attachments", raw=body.encode(), content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert "session_id" in assert_error(response, 400, "validation_error")["details"]
    assert row_counts() == before


def test_every_api_view_parses_with_the_bounded_parsers() -> None:
    """Every DRF view behind a URL parses bodies with ``somaagent.json_input``'s parsers only, so
    the depth bound and the NUL check hold on every JSON endpoint, today's and tomorrow's."""
    from django.urls import URLPattern, URLResolver, get_resolver
    from rest_framework.views import APIView

    from somaagent.json_input import JsonParser, MultiPartParser

    def views(resolver: URLResolver) -> list[tuple[str, type]]:
        found = []
        for entry in resolver.url_patterns:
            if isinstance(entry, URLResolver):
                found += views(entry)
            elif isinstance(entry, URLPattern):
                cls = getattr(entry.callback, "cls", None) or getattr(entry.callback, "view_class", None)
                if isinstance(cls, type) and issubclass(cls, APIView):
                    found.append((str(entry.pattern), cls))
        return found

    found = views(get_resolver())
    assert len(found) > 30
    for pattern, cls in found:
        parsers = {type(p) for p in cls().get_parsers()}
        assert parsers <= {JsonParser, MultiPartParser}, (pattern, parsers)
