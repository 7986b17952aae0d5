"""The policy port: every sensitive action asks it (SPEC §10).

``policy_authorize`` raises ``PolicyDenied`` when the answer is no, and also
when the policy engine cannot be asked (it fails closed).
"""

from somaagent.policy.port import PolicyRequest, policy_authorize, policy_port

__all__ = ["PolicyRequest", "policy_authorize", "policy_port"]
