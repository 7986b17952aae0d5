"""The policy port: every sensitive action asks it (SPEC §10).

``policy_authorize`` raises ``PolicyDenied`` when the answer is no, and also
when the policy engine cannot be asked (it fails closed). ``principal_authorize``
does the same for an API caller, building the context from who they are.
"""

from somaagent.policy.checks import principal_authorize, principal_context
from somaagent.policy.port import PolicyRequest, policy_authorize, policy_check, policy_decide, policy_port

__all__ = [
    "PolicyRequest",
    "policy_authorize",
    "policy_check",
    "policy_decide",
    "policy_port",
    "principal_authorize",
    "principal_context",
]
