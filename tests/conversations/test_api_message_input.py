"""Bad input to ``POST /v1/session/message``: a clear 4xx JSON error and nothing written."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.conf import settings

from conversations.models import Attachment, Session
from somaagent.identity.apikeys import api_key_revoke
from somaagent.models import Persona
from tests.conftest import make_tenant_key
from tests.conversations.api_support import Api, assert_error, row_counts

pytestmark = pytest.mark.django_db


@pytest.fixture
def theirs() -> Session:
    other: Any = make_tenant_key()
    return Session.objects.create(tenant=other.tenant, title="not yours")


def _unchanged(call: Any) -> Any:
    before = row_counts()
    response = call()
    assert row_counts() == before, "a rejected request wrote rows"
    return response


MAX = 32_000  # SOMA_MAX_MESSAGE_CHARS default


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "message"),
        ({"message": ""}, "message"),
        ({"message": "   \n\t "}, "message"),
        ({"message": None}, "message"),
        ({"message": ["a"]}, "message"),
        ({"message": 123}, "message"),
        ({"message": True}, "message"),
        ({"message": "a\x00b"}, "message"),
        ({"message": "hi", "sessionid": "9c4f6d1e-1d3a-4b7e-9f1e-2a7c3b5d8e01"}, "sessionid"),
        ({"message": "hi", "role": "system"}, "role"),
        ({"message": "hi", "session_id": "not-a-uuid"}, "session_id"),
        ({"message": "hi", "session_id": 42}, "session_id"),
        ({"message": "hi", "persona_id": "123"}, "persona_id"),
        ({"message": "hi", "persona_id": 7}, "persona_id"),
        ({"message": "hi", "attachments": ["nope"]}, "attachments"),
        ({"message": "hi", "attachments": [5]}, "attachments"),
        ({"message": "hi", "attachments": "a"}, "attachments"),
        ({"message": "hi", "attachments": [str(uuid.UUID(int=i + 1)) for i in range(11)]}, "attachments"),
        ({"message": "hi", "attachments": [str(uuid.UUID(int=1))] * 2}, "attachments"),
        ({"message": "hi", "metadata": "x"}, "metadata"),
        ({"message": "hi", "metadata": [1]}, "metadata"),
    ],
)
def test_invalid_fields_are_400(api, body, field):
    error = assert_error(_unchanged(lambda: api.post_message(body)), 400, "validation_error")
    assert field in error["details"], error


@pytest.mark.parametrize(
    "raw", [b"{", b'{"message": "hi",}', b"not json", b"\xff\xfe", b'"just a string"', b"[]"]
)
def test_malformed_or_non_object_json_is_400(api, raw):
    error = assert_error(_unchanged(lambda: api.post_message(raw=raw)), 400)
    assert error["code"] in ("invalid_json", "validation_error")


def test_empty_body_is_400(api):
    assert_error(_unchanged(lambda: api.post_message(raw=b"")), 400)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
)
def test_wrong_content_type_is_415(api, content_type):
    response = _unchanged(lambda: api.post_message(raw=b'{"message": "hi"}', content_type=content_type))
    assert_error(response, 415, "unsupported_media_type")


def test_message_longer_than_the_limit_is_413(api):
    assert settings.SOMA.max_message_chars == MAX
    error = assert_error(_unchanged(lambda: api.post_message({"message": "x" * (MAX + 1)})), 413)
    assert error["code"] == "payload_too_large" and error["details"]["max_chars"] == MAX
    # exactly at the limit is fine
    assert api.post_message({"message": "x" * MAX}).status_code == 202


def test_body_larger_than_the_limit_is_413(api):
    body = {"message": "hi", "metadata": {"pad": "x" * settings.SOMA.max_request_bytes}}
    error = assert_error(_unchanged(lambda: api.post_message(body)), 413, "payload_too_large")
    assert error["details"]["max_bytes"] == settings.SOMA.max_request_bytes


def test_metadata_larger_than_its_limit_is_413(api):
    body = {"message": "hi", "metadata": {"pad": "x" * settings.SOMA.max_metadata_bytes}}
    assert_error(_unchanged(lambda: api.post_message(body)), 413, "payload_too_large")


def test_unknown_session_is_404(api):
    response = _unchanged(lambda: api.post_message({"message": "hi", "session_id": str(uuid.uuid4())}))
    assert_error(response, 404, "not_found")


def test_another_tenants_session_is_404_and_untouched(api, theirs):
    response = _unchanged(lambda: api.post_message({"message": "hi", "session_id": str(theirs.pk)}))
    assert_error(response, 404, "not_found")
    theirs.refresh_from_db()
    assert theirs.last_seq == 0


def test_unknown_or_foreign_persona_is_404(api):
    foreign = Persona.objects.create(tenant=make_tenant_key().tenant, name="theirs")
    for persona_id in (uuid.uuid4(), foreign.pk):
        response = _unchanged(
            lambda pid=persona_id: api.post_message({"message": "hi", "persona_id": str(pid)})
        )
        assert_error(response, 404, "not_found")


def test_unknown_foreign_or_quarantined_attachment_is_rejected(api, me):
    other: Any = make_tenant_key()
    common = {"filename": "a.txt", "mime": "text/plain", "size": 1, "sha256": "0" * 64, "content": b"a"}
    foreign = Attachment.objects.create(tenant=other.tenant, **common)
    bad = Attachment.objects.create(tenant=me.tenant, status=Attachment.Status.QUARANTINED, **common)
    for attachment_id, status in ((uuid.uuid4(), 404), (foreign.pk, 404), (bad.pk, 400)):
        response = _unchanged(
            lambda aid=attachment_id: api.post_message({"message": "hi", "attachments": [str(aid)]})
        )
        assert_error(response, status)


@pytest.mark.parametrize("key", ["", " ", "a" * 256, "has space", "tab\tkey", "naïve"])
def test_bad_idempotency_key_is_400(api, key):
    response = _unchanged(lambda: api.post_message({"message": "hi"}, headers={"Idempotency-Key": key}))
    error = assert_error(response, 400, "validation_error")
    assert "Idempotency-Key" in error["details"]


def test_a_rejected_request_does_not_use_up_its_idempotency_key(api):
    headers = {"Idempotency-Key": "k-1"}
    response = _unchanged(
        lambda: api.post_message({"message": "hi", "session_id": str(uuid.uuid4())}, headers=headers)
    )
    assert_error(response, 404)
    assert api.post_message({"message": "hi"}, headers=headers).status_code == 202


@pytest.mark.parametrize(
    "auth",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer soma_nope",
        "Bearer " + "x" * 5000,
        "Token abc",
    ],
)
def test_missing_or_invalid_credentials_are_401(auth):
    api = Api(auth=auth)
    response = _unchanged(lambda: api.post_message({"message": "hi"}))
    assert_error(response, 401, "unauthenticated")


def test_a_well_formed_key_with_a_wrong_secret_is_401(me):
    prefix = me.key.split("_")[1]
    forged = f"soma_{prefix}_{'A' * 43}"
    assert_error(_unchanged(lambda: Api(key=forged).post_message({"message": "hi"})), 401, "unauthenticated")


def test_a_revoked_key_is_401(me, api):
    assert api.post_message({"message": "before"}).status_code == 202
    api_key_revoke(prefix=me.key.split("_")[1])
    assert_error(_unchanged(lambda: api.post_message({"message": "after"})), 401, "unauthenticated")


def test_wrong_method_is_405(api):
    assert_error(_unchanged(lambda: api.call("get", "/v1/session/message")), 405, "method_not_allowed")


def test_a_good_message_is_202_and_writes_one_of_each(api):
    """The control: the same client and shapes succeed when the input is right."""
    before = row_counts()
    response = api.post_message({"message": "hi", "metadata": {"k": "v"}}, headers={"Idempotency-Key": "ok"})
    assert response.status_code == 202, response.content
    after = row_counts()
    assert {k: after[k] - before[k] for k in after} == {
        "sessions": 1,
        "events": 1,
        "turns": 1,
        "outbox": 1,
        "idempotency": 1,
        "dlq": 0,
        "attachments": 0,
    }
