"""One DRF exception handler: every error leaves as ``{"error": {code, message, details}}``."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError as DjangoInterfaceError
from django.db import OperationalError as DjangoOperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

from somaagent.errors import DatabaseUnavailable, SomaError

log = logging.getLogger(__name__)

_DRF_CODES = {
    drf.ParseError: "malformed_request",
    drf.AuthenticationFailed: "unauthenticated",
    drf.NotAuthenticated: "unauthenticated",
    drf.PermissionDenied: "forbidden",
    drf.NotFound: "not_found",
    drf.MethodNotAllowed: "method_not_allowed",
    drf.NotAcceptable: "not_acceptable",
    drf.UnsupportedMediaType: "unsupported_media_type",
    drf.Throttled: "rate_limited",
    drf.ValidationError: "validation_error",
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _retry_after(exc: SomaError) -> int | None:
    value = getattr(exc, "retry_after", None)
    return int(value) if isinstance(value, int | float) and value > 0 else None


def error_response(exc: SomaError) -> JsonResponse:
    """The same shape for plain Django views (SSE, health) as for DRF views."""
    response = JsonResponse(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    if (wait := _retry_after(exc)) is not None:
        response["Retry-After"] = str(wait)
    return response


def unavailable_database(exc: BaseException) -> DatabaseUnavailable | None:
    """The API's error for a database that cannot be reached, if ``exc`` is one."""
    if isinstance(exc, DjangoOperationalError | DjangoInterfaceError):
        log.warning("database unavailable: %s", exc.__class__.__name__, extra={"error": str(exc)[:300]})
        return DatabaseUnavailable()
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if (down := unavailable_database(exc)) is not None:
        exc = down
    if isinstance(exc, SomaError):
        response = Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
        if (wait := _retry_after(exc)) is not None:
            response["Retry-After"] = str(wait)
        return response
    if isinstance(exc, Http404):
        return Response(error_body("not_found", "Not found."), status=404)
    if isinstance(exc, DjangoPermissionDenied):
        return Response(error_body("forbidden", "Permission denied."), status=403)
    if isinstance(exc, drf.APIException):
        code = next((c for t, c in _DRF_CODES.items() if isinstance(exc, t)), "error")
        if isinstance(exc, drf.ValidationError):
            message = "The request is not valid."
            details = exc.detail if isinstance(exc.detail, dict) else {"errors": exc.detail}
        else:
            message = str(exc.detail)
            details = {}
        response = Response(error_body(code, message, details), status=exc.status_code)
        wait = getattr(exc, "wait", None)
        if isinstance(exc, drf.Throttled) and wait:
            response["Retry-After"] = str(int(wait) + 1)
        if isinstance(exc, drf.AuthenticationFailed | drf.NotAuthenticated):
            response["WWW-Authenticate"] = 'Bearer realm="api"'
            response.status_code = 401
        return response
    return None
