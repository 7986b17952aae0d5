"""Password guessing is throttled on every login path: ``/v1/auth/token``, the web chat's
``/login/`` and ``/admin/login/`` (one user table, so one set of buckets); single sign-on's
refusals count against the client address's bucket.

Each attempt counts in two one-minute windows of the Redis rate limiter
(somaagent/ratelimit.py, which refuses when Redis is down): the **account** —
the username NFKC-normalised (as Django's login form does before it looks the user up, so
fullwidth ``"alice"`` is ``"alice"`` there), stripped and case-folded, so ``" Alice"``, ``"alice "`` and
fullwidth ``"alice"`` are one bucket — wherever the attempts come from, and the **client address** —
whatever usernames it tries; an IPv6 client is its /64 (one host is given a whole /64 and
can take any address in it). Over either limit: 429 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import unicodedata
from typing import Any

from django.conf import settings
from django.forms.utils import ErrorDict
from django.http import HttpRequest, HttpResponse

from somaagent.audit import client_ip
from somaagent.errors import RateLimited, RateLimitUnavailable
from somaagent.ratelimit import rate_limit_hit

MAX_USERNAME_CHARS = 150


def normalised_username(raw: object) -> str:
    """The account a login attempt is for, as its throttle bucket sees it."""
    text = unicodedata.normalize("NFKC", str(raw if raw is not None else ""))
    return unicodedata.normalize("NFKC", text.strip().casefold())[:MAX_USERNAME_CHARS]


def login_attempt(*, request: HttpRequest, username: object) -> None:
    """Count one login attempt; raise RateLimited (429) or RateLimitUnavailable (503)."""
    account = hashlib.sha256(normalised_username(username).encode()).hexdigest()[:32]
    rate_limit_hit(
        bucket=f"login:account:{account}",
        limit=settings.SOMA.login_attempts_per_minute,
        what="login attempts for this account",
    )
    address_attempt(request=request)


def client_network(request: HttpRequest) -> str:
    """The client address's bucket: the address itself (IPv4), its /64 (IPv6)."""
    raw = client_ip(request)
    if raw is None:
        return "unknown"
    address = ipaddress.ip_address(raw)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def address_attempt(*, request: HttpRequest) -> None:
    """Count one attempt of this client address alone (a refused single sign-on: no username)."""
    rate_limit_hit(
        bucket=f"login:address:{client_network(request)}",
        limit=settings.SOMA.login_attempts_per_address_per_minute,
        what="login attempts from this address",
    )


def refusal_message(exc: RateLimited | RateLimitUnavailable) -> str:
    if isinstance(exc, RateLimited):
        return f"Too many login attempts. Wait {exc.retry_after} seconds, then try again."
    return "Logging in is paused: attempts cannot be counted right now. Try again in a few seconds."


def refused_form(form_class: Any, request: HttpRequest, exc: RateLimited | RateLimitUnavailable) -> Any:
    """An unbound login form (nothing is checked) showing why the attempt was refused."""
    username = str(request.POST.get("username", ""))[:MAX_USERNAME_CHARS]
    form = form_class(request, initial={"username": username})
    form._errors = ErrorDict({"__all__": form.error_class([refusal_message(exc)])})
    return form


def with_retry_after(response: HttpResponse, exc: RateLimited | RateLimitUnavailable) -> HttpResponse:
    response.status_code = exc.status_code
    response["Retry-After"] = str(exc.retry_after)
    return response


class ThrottledLoginMixin:
    """For a Django ``LoginView``: a throttled POST gets the login page again, with the reason
    as the form's error, status 429 (503 while Redis is down) and ``Retry-After``; the password
    is not checked."""

    request: HttpRequest

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            login_attempt(request=request, username=request.POST.get("username"))
        except (RateLimited, RateLimitUnavailable) as exc:
            form = refused_form(self.get_form_class(), request, exc)  # type: ignore[attr-defined]
            return with_retry_after(self.render_to_response(self.get_context_data(form=form)), exc)  # type: ignore[attr-defined]
        return super().post(request, *args, **kwargs)  # type: ignore[misc]
