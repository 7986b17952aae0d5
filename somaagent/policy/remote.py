"""Remote policy adapter: an Open Policy Agent server's REST data API.

Decision: ``POST {SOMA_OPA_URL}/v1/data/soma/allow`` with ``{"input": …}``;
only ``{"result": true}`` allows. On a denial the reasons come from
``/v1/data/soma/deny``; an allowed ``tool.execute`` also asks
``/v1/data/soma/approval`` (a non-empty list: a person must approve the call).
Tenant policy data lives in OPA at ``data.tenants[<tenant id>]``: pushed with
``PUT /v1/data/tenants/<id>`` after
every change, and again whenever the policy reports ``policy_data_stale``
(OPA restarted or missed an update) — then the decision is asked once more.

One pooled httpx client per process with short timeouts; a transport error,
5xx or 429 is retried once after a jittered pause; anything else raises
``PolicyEngineError`` and the caller denies (fails closed).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

from somaagent.policy.types import Decision, PolicyEngineError, PolicyRequest, TenantPolicyData
from somaagent.process_local import PerProcess
from somaagent.retry import backoff_delay, parse_retry_after

log = logging.getLogger(__name__)

ATTEMPTS = 2
MAX_RETRY_AFTER = 1.0
STALE = "policy_data_stale"


class OpaPolicy:
    name = "opa"

    def __init__(self, base_url: str, *, timeout: float = 2.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._client = PerProcess(
            lambda: httpx.Client(
                base_url=self.base_url,
                timeout=httpx.Timeout(self.timeout),
                limits=httpx.Limits(max_connections=50, max_keepalive_connections=10),
            )
        )

    def client(self) -> httpx.Client:
        """One client per process (rebuilt after fork): building one costs an SSL context."""
        return self._client.get()

    def _call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        last: Exception | None = None
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(backoff_delay(attempt, base=0.1, cap=0.1))
            try:
                response = self.client().request(method, path, json=body)
            except httpx.HTTPError as exc:
                last = exc
                continue
            if response.status_code == 429 or response.status_code >= 500:
                last = PolicyEngineError(f"OPA answered HTTP {response.status_code} to {path}")
                wait = parse_retry_after(response.headers.get("retry-after"))
                if wait is not None and wait > MAX_RETRY_AFTER:
                    break
                if wait:
                    time.sleep(wait)
                continue
            return response
        raise PolicyEngineError(f"OPA at {self.base_url} could not answer {path}: {last!r}")

    def _query(self, rule: str, policy_input: dict[str, Any]) -> Any:
        response = self._call("POST", f"/v1/data/soma/{rule}", {"input": policy_input})
        if response.status_code != 200:
            raise PolicyEngineError(f"OPA answered HTTP {response.status_code} to soma/{rule}")
        try:
            body = response.json()
        except ValueError as exc:
            raise PolicyEngineError("OPA answered something that is not JSON") from exc
        if not isinstance(body, dict):
            raise PolicyEngineError("OPA answered something that is not a JSON object")
        return body.get("result")  # absent when the rule is undefined

    def decide(self, request: PolicyRequest, data: TenantPolicyData) -> Decision:
        policy_input = request.as_input()
        for attempt in range(2):
            allowed = self._query("allow", policy_input)
            if allowed is True:
                if request.action != "tool.execute":
                    return Decision(allowed=True)
                approval = self._query("approval", policy_input)
                if approval is not None and not isinstance(approval, list):
                    raise PolicyEngineError(f"OPA answered {approval!r} for soma/approval, not a list")
                return Decision(allowed=True, approval=tuple(sorted(str(r) for r in approval or ())))
            if allowed not in (False, None):
                raise PolicyEngineError(f"OPA answered {allowed!r} for soma/allow, not a boolean")
            reasons = self._query("deny", policy_input)
            reasons = tuple(sorted(str(r) for r in reasons)) if isinstance(reasons, list) else ()
            if STALE in reasons and attempt == 0 and data.tenant_id:
                log.info("OPA holds stale policy data; pushing it", extra={"tenant": data.tenant_id})
                self.push(data)
                continue
            return Decision(allowed=False, reasons=reasons)
        return Decision(allowed=False, reasons=(STALE,))

    def push(self, data: TenantPolicyData) -> None:
        path = f"/v1/data/tenants/{data.tenant_id}"
        if data.version:
            response = self._call("PUT", path, data.as_data())
        else:
            response = self._call("DELETE", path)
            if response.status_code == 404:
                return
        if response.status_code not in (200, 204):
            raise PolicyEngineError(f"OPA answered HTTP {response.status_code} to PUT {path}")

    def data_changed(self, data: TenantPolicyData) -> None:
        try:
            self.push(data)
        except PolicyEngineError:
            # Not fatal: the next decision sees policy_data_stale and pushes again.
            log.warning("could not push policy data to OPA", extra={"tenant": data.tenant_id}, exc_info=True)
