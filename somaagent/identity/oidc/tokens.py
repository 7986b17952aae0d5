"""The ID token's checks (OpenID Connect Core §3.1.3.7), every one of them, or the sign-in is refused.

Signature by one of the provider's published keys (an asymmetric algorithm the
provider announces; never ``none``, never an HMAC with the client secret),
``iss`` equal to the configured issuer, ``aud`` containing our client id (and
``azp`` equal to it when there are several audiences), ``exp`` in the future and
``iat`` not in it (``SOMA_OIDC_CLOCK_SKEW_SECONDS`` of leeway), a ``sub``, and
the ``nonce`` this browser's sign-in sent.
"""

from __future__ import annotations

import hmac
from typing import Any

import jwt
from django.conf import settings

from somaagent.identity.oidc.errors import SignInRefused
from somaagent.identity.oidc.provider import provider_metadata, signing_key

ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


def _refused(reason: str, message: str) -> SignInRefused:
    return SignInRefused(message, details={"reason": reason})


def _header(id_token: str) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.InvalidTokenError:
        raise _refused("malformed_token", "The identity provider's ID token is malformed.") from None
    return header


def id_token_claims(*, id_token: Any, nonce: str) -> dict[str, Any]:
    """The verified claims of an ID token; SignInRefused (with a ``reason``) when any check fails."""
    if not isinstance(id_token, str) or not id_token:
        raise _refused("no_id_token", "The identity provider sent no ID token.")
    config = settings.SOMA_OIDC
    header = _header(id_token)
    algorithm = str(header.get("alg", ""))
    allowed = ASYMMETRIC.intersection(provider_metadata().signing_algorithms)
    if algorithm not in allowed:
        raise _refused(
            "bad_algorithm", f"The ID token's signing algorithm {algorithm[:20]!r} is not accepted."
        )
    jwk = signing_key(str(header.get("kid", "")))
    if jwk is None:
        raise _refused(
            "unknown_key", "The ID token is signed with a key the identity provider does not publish."
        )
    if jwk.get("alg", algorithm) != algorithm:
        raise _refused("bad_algorithm", "The ID token's algorithm does not match its key.")
    try:
        key = jwt.PyJWK(jwk, algorithm=algorithm)
    except (jwt.PyJWKError, jwt.InvalidKeyError):
        raise _refused("bad_algorithm", "The ID token's algorithm does not fit its key.") from None
    try:
        claims = jwt.decode(
            id_token,
            key=key,
            algorithms=[algorithm],
            audience=config.client_id,
            issuer=config.issuer,
            leeway=config.clock_skew_seconds,
            options={"require": ["iss", "aud", "exp", "iat", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise _refused("expired", "The ID token has expired.") from None
    except jwt.InvalidAudienceError:
        raise _refused("wrong_audience", "The ID token was issued for another application.") from None
    except jwt.InvalidIssuerError:
        raise _refused("wrong_issuer", "The ID token was issued by another provider.") from None
    except jwt.InvalidSignatureError:
        raise _refused("bad_signature", "The ID token's signature does not verify.") from None
    except jwt.ImmatureSignatureError:
        raise _refused("not_yet_valid", "The ID token is not valid yet (check the clocks).") from None
    except jwt.InvalidTokenError as exc:
        raise _refused("invalid_token", f"The ID token is invalid ({str(exc)[:120]}).") from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != config.client_id:
        raise _refused("wrong_audience", "The ID token was issued for several applications, not to us.")
    if not isinstance(claims.get("sub"), str) or not claims["sub"] or len(claims["sub"]) > 255:
        raise _refused("invalid_token", "The ID token's subject (sub) is missing or too long.")
    token_nonce = claims.get("nonce")
    if not isinstance(token_nonce, str) or not hmac.compare_digest(token_nonce.encode(), nonce.encode()):
        raise _refused("nonce_mismatch", "The ID token does not answer this sign-in (nonce mismatch).")
    return claims
