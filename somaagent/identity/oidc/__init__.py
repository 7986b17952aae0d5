"""Single sign-on with the company's identity provider (OpenID Connect, issue 21).

- ``conf``: the settings (``settings.SOMA_OIDC``) and the group mapping, parsed at start-up.
- ``provider``: discovery, the provider's keys and its token endpoint (first used at sign-in).
- ``tokens``: every check on the ID token.
- ``accounts``: the local user behind issuer + ``sub``; ``mapping``: groups → memberships.
- ``backend``: the Django authentication backends; ``views``: start, callback, refusal page.
"""
