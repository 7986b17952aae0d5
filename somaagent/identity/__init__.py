"""Identity: who is calling, and what they may do (part of the core).

- ``principal``: the ``Principal`` behind a request (a tenant plus an API key or a user, with scopes).
- ``scopes``: what a key or a role may do.
- ``apikeys``: API keys (create, revoke, authenticate; cached per data version).
- ``jwt_auth``: JWTs obtained with a username and password.
- ``authentication``: DRF's authentication and the permission every API view runs, and
  ``request_principal`` for a plain view (the SSE stream); ``async_auth``: the same from
  async code (the OpenAI door); ``ws_auth``: WebSocket handshakes.
- ``login_throttle``: password guessing throttled on every login path.
- ``oidc``: single sign-on with the company's identity provider (OpenID Connect).

Kept light (nothing is imported here): the settings read ``identity.oidc.conf`` before
Django's apps are loaded.
"""
