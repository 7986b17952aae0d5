"""Whether everything ``make run`` started answers, at the URL the banner will print.

Checked from outside, the way a user would reach it: the web's ``/healthz`` and
``/readyz`` at the planned URL (so the URL is verified, not assumed), a worker
consuming every queue (Celery's remote control over the broker) and, when this
run serves the embedded local model, the ``llm`` check of ``/readyz``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from somaagent.celery import app
from somaagent.project.devrun.plan import RunPlan


@dataclass
class Readiness:
    waiting_for: list[str] = field(default_factory=list)
    readyz: dict[str, Any] = field(default_factory=dict)  # the last /readyz body

    @property
    def ready(self) -> bool:
        return not self.waiting_for


def _get(client: httpx.Client, url: str) -> httpx.Response | None:
    try:
        return client.get(url)
    except httpx.HTTPError:
        return None


def _queues_without_worker() -> list[str]:
    """The queues of celeryconfig that no running worker consumes (all of them if none answers)."""
    # celeryconfig reads the environment when imported: here, after the launcher loaded .env.
    from celeryconfig import QUEUES

    replies = app.control.inspect(timeout=1.0).active_queues() or {}
    consumed = {q.get("name") for queues in replies.values() for q in queues or []}
    return [q for q in QUEUES if q not in consumed]


def readiness_check(plan: RunPlan, client: httpx.Client) -> Readiness:
    state = Readiness()
    health = _get(client, f"{plan.url}/healthz")
    if health is None or health.status_code != 200 or health.json().get("status") != "ok":
        state.waiting_for.append(f"the web server at {plan.url}")
        return state
    ready = _get(client, f"{plan.url}/readyz")
    body: dict[str, Any] = {}
    if ready is not None:
        try:
            body = ready.json()
        except ValueError:
            body = {}
    state.readyz = body
    checks = body.get("checks") or {}
    if ready is None or ready.status_code != 200:
        failing = sorted(n for n, c in checks.items() if c.get("required") and not c.get("ok"))
        state.waiting_for.append(f"{plan.url}/readyz ({', '.join(failing) or 'no answer'})")
    if plan.local_model_port is not None and not (checks.get("llm") or {}).get("ok"):
        state.waiting_for.append(f"the embedded local model on 127.0.0.1:{plan.local_model_port}")
    missing = _queues_without_worker()
    if missing:
        state.waiting_for.append(f"a worker for the queue(s) {', '.join(missing)}")
    return state
