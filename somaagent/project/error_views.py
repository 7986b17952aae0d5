"""JSON answers for requests no view handled, in the API's error shape."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from somaagent.api_errors import error_body


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("not_found", "Not found."), status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse(error_body("internal_error", "Internal server error."), status=500)
