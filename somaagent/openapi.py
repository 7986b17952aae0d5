"""OpenAPI: the document as exact as the code (issue 14 item 6).

- ``SomaAutoSchema``: request schemas as strict as the serializers: a ``StrictSerializer``
  takes no other property (``additionalProperties: false``); a request string holds no NUL
  (``somaagent.json_input`` refuses it) and, when DRF trims it and refuses it blank, holds a
  character other than white space.
- ``error_responses`` (a postprocessing hook): every error an operation can answer, in the
  SPEC §6 shape (component ``Error``), and a request body is required where one is needed.
- ``BearerScheme``: the bearer authentication (an API key or a JWT access token). drf-spectacular
  finds an extension by its class; it is defined here, beside ``SomaAutoSchema`` (the
  settings' ``DEFAULT_SCHEMA_CLASS``), so it exists whenever a document is generated.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

from somaagent.serializers import StrictSerializer

# JSON-schema (ECMA) patterns; they describe what is accepted, they never run on the server.
NO_NUL = r"^[^\x00]*$"
# Python's white space (str.isspace, what DRF's trimming removes), listed: ECMA's \s differs.
_SPACE = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK = rf"^[^\x00]*[^\x00{_SPACE}][^\x00]*$"


class BearerScheme(OpenApiAuthenticationExtension):
    """``Authorization: Bearer …`` on every API operation (``ApiKeyAuthentication``)."""

    target_class = "somaagent.identity.authentication.ApiKeyAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (soma_<prefix>_<secret>) or a JWT from POST /v1/auth/token.",
        }


class SomaAutoSchema(AutoSchema):
    def _map_basic_serializer(self, serializer: Any, direction: Any) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_basic_serializer(serializer, direction)
        if direction == "request" and isinstance(serializer, StrictSerializer):
            schema["additionalProperties"] = False
        return schema

    def _map_serializer_field(self, field: Any, direction: Any, bypass_extensions: bool = False) -> Any:
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and isinstance(schema, dict)
            and schema.get("type") == "string"
            and not {"format", "enum", "pattern"} & set(schema)
        ):
            blank_refused = not field.allow_blank and field.trim_whitespace
            schema["pattern"] = NOT_BLANK if blank_refused else NO_NUL
            if not field.allow_blank:
                schema.setdefault("minLength", 1)
        return schema


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every error (SPEC §6).",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object", "additionalProperties": True},
            },
            "required": ["code", "message", "details"],
        }
    },
    "required": ["error"],
}
ERRORS = {
    "400": "Not valid: malformed or too deeply nested JSON (invalid_json), or a field (validation_error)",
    "401": "No credential, or not a valid one",
    "403": "The credential lacks the scope, or policy denies it",
    "404": "Not found (or another tenant's)",
    "405": "Method not allowed",
    "409": "The Idempotency-Key was used with another body",
    "413": "The body, the message or the metadata is too large",
    "415": "Media type not supported",
    "429": "Rate limit or budget exceeded (see Retry-After)",
    "503": "Not available now (database, rate limiter); retry",
}
# Any JSON value the API stores (metadata): strings and keys without NUL.
JSON_VALUE: dict[str, Any] = {
    "nullable": True,
    "anyOf": [
        {"type": "string", "pattern": NO_NUL},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "array", "items": {"$ref": "#/components/schemas/JsonValue"}},
        {
            "type": "object",
            "propertyNames": {"pattern": NO_NUL},
            "additionalProperties": {"$ref": "#/components/schemas/JsonValue"},
        },
    ],
}
_IDEMPOTENT = {("/v1/session/message", "post")}


def _statuses(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    # Every operation: no or a bad credential (the token endpoints: bad username or password),
    # a missing scope or a policy denial, a rate limit, a method it lacks, an outage.
    statuses = ["401", "403", "405", "429", "503"]
    params = operation.get("parameters") or []
    if operation.get("requestBody") or any(p.get("in") == "path" for p in params):
        statuses.append("404")  # the path's resource, or one the body names (session, persona, file)
    if operation.get("requestBody") or any(p.get("in") in ("query", "header") for p in params):
        statuses.append("400")
    if operation.get("requestBody"):
        statuses += ["413", "415"]
    if (path, method) in _IDEMPOTENT or "409" in (operation.get("responses") or {}):
        statuses.append("409")  # the operation's own description of the conflict, if it has one
    return statuses


def error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the error responses of every operation."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    schemas["JsonValue"] = JSON_VALUE
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status in _statuses(path, method, operation):
                documented = responses.get(status) or {}
                responses[status] = {
                    "description": documented.get("description") or ERRORS[status],
                    "content": content,
                }
            if operation.get("requestBody"):
                operation["requestBody"]["required"] = True
    return result
