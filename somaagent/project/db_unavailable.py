"""A database that cannot be reached answers 503, never a 500 or Django's HTML debug page.

DRF views map the error in ``somaagent.api_errors``. Everything else (the web
chat's pages, the admin, the stream views, the OpenAI-compatible door, a session
or user read by a view) is answered by this middleware's ``process_exception``,
before Django builds its 500: with ``DEBUG`` on, the debug page alone read the
login session again for each of its parts, 1.5 s each with the database away
(15 s for the chat's page). An error raised by another middleware never reaches
``process_exception``; Django turns it into a 500 first, so ``got_request_exception``
marks the request and this middleware, outermost, swaps that 500 for a 503. Either
way the answer has ``Retry-After``: JSON in the API's error shape under ``/v1/``,
a short text page elsewhere.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.signals import got_request_exception
from django.http import HttpRequest, HttpResponse

from somaagent.api_errors import error_response, unavailable_database
from somaagent.errors import DatabaseUnavailable

_MARK = "soma_database_unavailable"


def _mark(sender: Any, request: HttpRequest | None = None, **_: Any) -> None:
    exc = sys.exc_info()[1]
    if request is not None and exc is not None and unavailable_database(exc) is not None:
        setattr(request, _MARK, True)


def _unavailable(request: HttpRequest) -> HttpResponse:
    down = DatabaseUnavailable()
    if request.path.startswith("/v1/"):
        return error_response(down)
    response = HttpResponse(
        "The service cannot reach its database right now. It retries on its own; "
        "please try again in a few seconds.\n",
        status=503,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = str(down.retry_after)
    return response


class DatabaseUnavailableMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        # Marks a request whose exception was a lost database (once per process: the uid).
        got_request_exception.connect(_mark, dispatch_uid="soma-database-unavailable")
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self._acall(request)
        return self._swap(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        response = await self.get_response(request)
        return self._swap(request, response)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A view's lost database: the 503 at once, not after Django's 500 (and its debug page)."""
        if unavailable_database(exception) is None:
            return None
        return _unavailable(request)

    @staticmethod
    def _swap(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if response.status_code == 500 and getattr(request, _MARK, False):
            return _unavailable(request)
        return response
