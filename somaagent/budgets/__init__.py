"""Token budgets per tenant and per persona per UTC day and month (SPEC §10).

Gateway: ``budget_check`` refuses a message when a budget has no room for it
(429 with ``Retry-After``). Turn: ``budget_reserve`` reserves an estimate before
the model call, atomically against every applicable limit; ``budget_settle``
replaces it with the real usage when the turn ends. Counters live in Redis
(``budget:tokens:{tenant}:{persona|all}:{period}``) and are rebuilt from the
``token_usage`` table when missing. While Redis cannot be reached a limited
check or reservation is refused (503 ``budget_unavailable``, retryable), never
let through: the table alone does not know what running replies reserved.
"""
