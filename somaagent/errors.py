"""The domain error hierarchy; api_errors maps it onto the HTTP error shape (SPEC §6)."""

from __future__ import annotations

from typing import Any


class SomaError(Exception):
    status_code = 400
    code = "error"

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details or {}


class ValidationFailed(SomaError):
    status_code = 400
    code = "validation_error"


class Unauthenticated(SomaError):
    status_code = 401
    code = "unauthenticated"


class Forbidden(SomaError):
    """The caller is known but its role or the key's scopes do not allow this."""

    status_code = 403
    code = "forbidden"


class PolicyDenied(SomaError):
    status_code = 403
    code = "policy_denied"


class NotFound(SomaError):
    status_code = 404
    code = "not_found"


class IdempotencyConflict(SomaError):
    status_code = 409
    code = "idempotency_conflict"


class Conflict(SomaError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(SomaError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(SomaError):
    status_code = 415
    code = "unsupported_media_type"


class RateLimited(SomaError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = max(1, int(retry_after))


class BudgetExceeded(RateLimited):
    code = "budget_exceeded"


class ServiceUnavailable(SomaError):
    status_code = 503
    code = "unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot be reached (down, restarting, out of connections, disk full)."""

    code = "database_unavailable"
    retry_after = 5

    def __init__(
        self, message: str = "The database is unavailable; try again shortly.", **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)


class RateLimitUnavailable(ServiceUnavailable):
    """Rate limits live in Redis: while it cannot be reached, requests are refused, not let through."""

    code = "rate_limit_unavailable"
    retry_after = 5

    def __init__(
        self, message: str = "Rate limits cannot be checked right now; try again shortly.", **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)


class BudgetUnavailable(ServiceUnavailable):
    """Budgets are counted in Redis: while it cannot be reached, a limited call is refused."""

    code = "budget_unavailable"
    retry_after = 5

    def __init__(
        self, message: str = "Token budgets cannot be checked right now; try again shortly.", **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)


class StreamUnavailable(ServiceUnavailable):
    """A live stream's buffer (Redis) went away: the stream ends; the client resumes from its cursor."""

    code = "stream_unavailable"
    retry_after = 5

    def __init__(
        self,
        message: str = "The live stream was interrupted; reconnect from your last event shortly.",
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
