"""Embedded policy adapter: the shipped Rego files evaluated in-process by regopy (rego-cpp).

One interpreter per (tenant, policy-data version), kept in a small LRU, so a
decision costs one evaluation (a few milliseconds of CPU) and an edit in admin
is seen by the next decision. Interpreters are not shared between threads at
the same time: a lock serialises evaluation.

Rego without ``time``/``http``/random builtins (the shipped policy uses none)
is a pure function of its modules, data and input, so decisions are memoised
too, keyed by the tenant's data version and the whole input: a repeated
question (the same caller sending again) costs a dictionary lookup, and a new
data version can never be answered from an old entry.

rego-cpp quirk: querying a rule that has a ``default`` directly
(``data.soma.allow``) answers *undefined* instead of the default; binding it
(``allow := data.soma.allow``) gives the right value, so that is the query.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from pathlib import Path

from regopy import Interpreter

from somaagent.policy.data import TenantPolicyData
from somaagent.policy.types import Decision, PolicyEngineError, PolicyRequest

REGO_DIR = Path(__file__).resolve().parent / "rego"
QUERY = "allow := data.soma.allow; deny := data.soma.deny"


def shipped_modules() -> list[tuple[str, str]]:
    """(name, source) of every shipped ``.rego`` file, in a stable order."""
    return [(path.stem, path.read_text()) for path in sorted(REGO_DIR.glob("*.rego"))]


def evaluate(interpreter: Interpreter, policy_input: dict[str, object]) -> Decision:
    """One decision from a loaded interpreter; anything but a clean answer raises."""
    interpreter.set_input_term(json.dumps(policy_input))
    output = interpreter.query(QUERY)
    if not output.ok() or len(output) == 0:
        raise PolicyEngineError(f"the Rego evaluation failed: {str(output)[:300]}")
    bindings = output[0].bindings
    allow = bindings.get("allow")
    if not isinstance(allow, bool):
        raise PolicyEngineError(f"the policy answered {allow!r}, not a boolean")
    reasons = bindings.get("deny") or []
    return Decision(allowed=allow, reasons=tuple(sorted(str(r) for r in reasons)))


def build_interpreter(modules: list[tuple[str, str]], data: dict[str, object]) -> Interpreter:
    interpreter = Interpreter()
    for name, source in modules:
        interpreter.add_module(name, source)
    interpreter.add_data_json(json.dumps(data))
    return interpreter


class RegoPolicy:
    name = "embedded"

    def __init__(
        self,
        modules: list[tuple[str, str]] | None = None,
        *,
        cache_size: int = 256,
        decision_cache_size: int = 4096,
    ) -> None:
        self._modules = modules if modules is not None else shipped_modules()
        if not self._modules:
            raise PolicyEngineError(f"no .rego files in {REGO_DIR}")
        self._cache: OrderedDict[tuple[str, int], Interpreter] = OrderedDict()
        self._cache_size = cache_size
        self._decisions: OrderedDict[tuple[str, int, str], Decision] = OrderedDict()
        self._decision_cache_size = decision_cache_size
        self._lock = threading.Lock()
        # Compile once now, so a broken policy file stops start-up rather than every request.
        evaluate(build_interpreter(self._modules, {"tenants": {}}), PolicyRequest.probe().as_input())

    def _interpreter(self, data: TenantPolicyData) -> Interpreter:
        cache_key = (data.tenant_id, data.version)
        interpreter = self._cache.get(cache_key)
        if interpreter is None:
            tenants = {data.tenant_id: data.as_data()} if data.tenant_id and data.version else {}
            interpreter = build_interpreter(self._modules, {"tenants": tenants})
            self._cache[cache_key] = interpreter
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(cache_key)
        return interpreter

    def decide(self, request: PolicyRequest, data: TenantPolicyData) -> Decision:
        policy_input = request.as_input()
        key = (data.tenant_id, data.version, json.dumps(policy_input, sort_keys=True))
        with self._lock:
            decision = self._decisions.get(key)
            if decision is not None:
                self._decisions.move_to_end(key)
                return decision
            decision = evaluate(self._interpreter(data), policy_input)
            self._decisions[key] = decision
            while len(self._decisions) > self._decision_cache_size:
                self._decisions.popitem(last=False)
            return decision

    def data_changed(self, data: TenantPolicyData) -> None:
        """Nothing to do: interpreters are keyed by version, the next decision builds a new one."""
