"""Why a sign-in through the identity provider did not happen: always a refusal, never a fallback."""

from __future__ import annotations

from somaagent.errors import Forbidden, ServiceUnavailable, ValidationFailed


class SignInRefused(Forbidden):
    """The provider's answer did not pass a check, or the account may not sign in (403)."""

    code = "sign_in_refused"


class SignInInvalid(ValidationFailed):
    """The callback itself is malformed, unknown or already used (400): state, code, parameters."""

    code = "sign_in_invalid"


class ProviderUnavailable(ServiceUnavailable):
    """Discovery, keys or the token endpoint could not be reached or answered nonsense (503)."""

    code = "provider_unavailable"
    retry_after = 10
