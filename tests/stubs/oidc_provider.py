"""A stub OpenID provider over real HTTP: discovery, a JWKS with a rotating key, authorize, token,
end_session. Just enough of OpenID Connect Core and RFC 7636 (PKCE) to drive a real sign-in.

Run: ``python -m tests.stubs.oidc_provider --port 0`` (prints ``PORT <n>`` when ready). The issuer
is ``http://127.0.0.1:<port>``; the client is ``soma-test`` with secret ``soma-test-secret``.

- ``GET /.well-known/openid-configuration``  discovery
- ``GET /jwks``            the current signing key (after ``/_rotate``: only the new one)
- ``GET /authorize``       no login page: signs in the person set by ``/_user`` and redirects
                           back with ``code`` and ``state`` (S256 PKCE is required)
- ``POST /token``          code (once) + ``code_verifier`` + client secret (basic) → tokens
- ``GET /end_session``     RP-initiated logout: redirects to ``post_logout_redirect_uri``

Controls: ``POST /_user`` (claims of whoever signs in next: ``sub``, ``groups``, …),
``POST /_tamper`` (how the next ID tokens are spoiled: ``aud``, ``iss``, ``exp_offset``,
``nonce``, ``bad_signature``, ``alg_none``, ``kid``, ``no_kid``, ``retired_key``: signed with the key
``/_rotate`` withdrew, under its own key id), ``POST /_fail`` ``{"discovery": 500}``,
``POST /_rotate``, ``POST /_reset``, ``GET /_log`` (requests seen, with their query/form).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.stubs.asgi import read_body, respond, serve, stub_arguments

CLIENT_ID = "soma-test"
CLIENT_SECRET = "soma-test-secret"
STATE: dict[str, Any] = {}


def _new_key() -> dict[str, Any]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = secrets.token_hex(6)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    return {"kid": kid, "private": private, "jwk": {**public, "kid": kid, "use": "sig", "alg": "RS256"}}


def reset() -> None:
    STATE.clear()
    STATE.update(
        key=STATE.get("key") or _new_key(),
        user={"sub": "alice-sub", "preferred_username": "alice", "email": "alice@example.com"},
        tamper={},
        fail={},
        codes={},
        log=[],
    )


def _issuer(scope: dict[str, Any]) -> str:
    host, port = scope["server"]
    return f"http://{host}:{port}"


def _discovery(issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/jwks",
        "end_session_endpoint": f"{issuer}/end_session",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
    }


def _redirect(location: str) -> tuple[int, bytes, str, list[tuple[bytes, bytes]]]:
    return 302, b"", "text/plain", [(b"location", location.encode())]


def _authorize(query: dict[str, str]) -> tuple[int, bytes, str, list[tuple[bytes, bytes]]]:
    redirect_uri = query.get("redirect_uri", "")
    if query.get("client_id") != CLIENT_ID or not redirect_uri:
        return 400, b"unknown client or no redirect_uri", "text/plain", []
    back = {"state": query.get("state", "")}
    if query.get("response_type") != "code" or query.get("code_challenge_method") != "S256":
        return _redirect(f"{redirect_uri}?{urlencode({**back, 'error': 'invalid_request'})}")
    if "openid" not in query.get("scope", "").split() or not query.get("code_challenge"):
        return _redirect(f"{redirect_uri}?{urlencode({**back, 'error': 'invalid_request'})}")
    code = secrets.token_urlsafe(24)
    STATE["codes"][code] = {
        "redirect_uri": redirect_uri,
        "nonce": query.get("nonce"),
        "challenge": query["code_challenge"],
        "user": dict(STATE["user"]),
    }
    return _redirect(f"{redirect_uri}?{urlencode({**back, 'code': code})}")


def _client_ok(form: dict[str, str], headers: dict[bytes, bytes]) -> bool:
    auth = headers.get(b"authorization", b"").decode()
    if auth.lower().startswith("basic "):
        user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        return user == CLIENT_ID and password == CLIENT_SECRET
    return form.get("client_id") == CLIENT_ID and form.get("client_secret") == CLIENT_SECRET


def _id_token(issuer: str, grant: dict[str, Any]) -> str:
    tamper = STATE["tamper"]
    now = int(time.time())
    claims = {
        "iss": tamper.get("iss", issuer),
        "aud": tamper.get("aud", CLIENT_ID),
        "iat": now,
        "exp": now + int(tamper.get("exp_offset", 300)),
        "nonce": tamper.get("nonce", grant["nonce"]),
        **grant["user"],
    }
    if tamper.get("alg_none"):
        return jwt.encode(claims, "", algorithm="none", headers={"kid": STATE["key"]["kid"]})
    signer = STATE.get("retired", STATE["key"]) if tamper.get("retired_key") else STATE["key"]
    key = _new_key()["private"] if tamper.get("bad_signature") else signer["private"]
    headers = {} if tamper.get("no_kid") else {"kid": tamper.get("kid", signer["kid"])}
    return jwt.encode(claims, key, algorithm="RS256", headers=headers)


def _token(issuer: str, form: dict[str, str], headers: dict[bytes, bytes]) -> tuple[int, dict[str, Any]]:
    if not _client_ok(form, headers):
        return 401, {"error": "invalid_client"}
    grant = STATE["codes"].pop(form.get("code", ""), None)
    if form.get("grant_type") != "authorization_code" or grant is None:
        return 400, {"error": "invalid_grant"}
    if form.get("redirect_uri") != grant["redirect_uri"]:
        return 400, {"error": "invalid_grant", "error_description": "redirect_uri"}
    verifier = form.get("code_verifier", "")
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    if challenge != grant["challenge"]:
        return 400, {"error": "invalid_grant", "error_description": "PKCE verifier"}
    return 200, {
        "access_token": secrets.token_urlsafe(24),
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": _id_token(issuer, grant),
    }


def _control(path: str, body: Any) -> Any:
    if path == "/_user":
        STATE["user"] = body
    elif path == "/_tamper":
        STATE["tamper"] = body or {}
    elif path == "/_fail":
        STATE["fail"] = body or {}
    elif path == "/_rotate":
        STATE["retired"], STATE["key"] = STATE["key"], _new_key()
        return {"kid": STATE["key"]["kid"]}
    elif path == "/_reset":
        reset()
    elif path == "/_log":
        return STATE["log"]
    return {"ok": True, "kid": STATE["key"]["kid"]}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    headers = dict(scope["headers"])
    query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
    raw = await read_body(receive)
    issuer = _issuer(scope)
    if path.startswith("/_"):
        doc = _control(path, json.loads(raw) if raw else None)
        await respond(send, 200, json.dumps(doc).encode())
        return
    form = {k: v[0] for k, v in parse_qs(raw.decode()).items()} if raw else {}
    STATE["log"].append({"method": scope["method"], "path": path, "query": query, "form": form})
    fail = STATE["fail"].get(path.strip("/").replace(".well-known/openid-configuration", "discovery"))
    if fail:
        await respond(send, int(fail), b'{"error": "stub failure"}')
    elif path == "/.well-known/openid-configuration":
        await respond(send, 200, json.dumps(_discovery(issuer)).encode())
    elif path == "/jwks":
        await respond(send, 200, json.dumps({"keys": [STATE["key"]["jwk"]]}).encode())
    elif path == "/authorize":
        await respond(send, *_authorize(query))
    elif path == "/token" and scope["method"] == "POST":
        status, doc = _token(issuer, form, headers)
        await respond(
            send, status, json.dumps(doc).encode(), "application/json", [(b"cache-control", b"no-store")]
        )
    elif path == "/end_session":
        target = query.get("post_logout_redirect_uri")
        if target:
            await respond(send, *_redirect(target))
        else:
            await respond(send, 200, b"signed out", "text/plain")
    else:
        await respond(send, 404, b'{"error": "not found"}')


def main() -> None:
    reset()
    serve(app, stub_arguments().parse_args())


if __name__ == "__main__":
    main()
