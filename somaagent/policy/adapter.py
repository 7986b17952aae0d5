"""Choosing the policy adapter, once per process, from the settings.

``SOMA_OPA_URL`` set means the OPA server (remote), unset means the shipped Rego
evaluated in-process (embedded). Only the chosen adapter's module is imported: the
other one's library (regopy's native engine, or the OPA client) is never loaded.
"""

from __future__ import annotations

from django.conf import settings

from somaagent.policy.types import PolicyPort
from somaagent.process_local import once_per_process


@once_per_process
def policy_port() -> PolicyPort:
    """This process's policy adapter, built on first use (and again in a forked child)."""
    url = settings.SOMA.opa_url
    if url:
        from somaagent.policy.remote import OpaPolicy

        return OpaPolicy(url, timeout=settings.SOMA.opa_timeout_seconds)
    from somaagent.policy.embedded import RegoPolicy

    return RegoPolicy()
