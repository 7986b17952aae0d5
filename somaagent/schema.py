"""OpenAPI: describe the bearer authentication (API key or JWT access token).

The rest of the document's rules (strict request schemas, error responses) is in
somaagent/openapi.py.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerScheme(OpenApiAuthenticationExtension):
    target_class = "somaagent.identity.authentication.ApiKeyAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (soma_<prefix>_<secret>) or a JWT from POST /v1/auth/token.",
        }
