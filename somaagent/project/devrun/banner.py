"""The "ready" banner ``make run`` prints once everything answers: URL, login, key, a try-it command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from somaagent.dev_credentials import DevCredentials
from somaagent.project.devrun.plan import RunPlan

RULE = "=" * 78


def _model_line(plan: RunPlan, readyz: dict[str, Any]) -> str:
    llm = (readyz.get("checks") or {}).get("llm") or {}
    if plan.local_model_port is not None:
        where = f"the embedded local model on 127.0.0.1:{plan.local_model_port} (SOMA_LOCAL_LLM_PORT)"
        return f"{llm.get('model') or 'smollm2-135m-instruct'}, {where}"
    if llm.get("configured") is False:
        return (
            "none: every reply ends with `no_model_configured` "
            "(set SOMA_LLM_BASE_URL, or let make run install the local model: README, Start here)"
        )
    if llm.get("ok"):
        endpoints = llm.get("endpoints") or [{}]
        return f"{llm.get('model')} at {endpoints[0].get('url', '?')}"
    return f"NOT answering: {str(llm.get('error') or 'unknown')[:160]}"


def banner_text(
    *, plan: RunPlan, credentials: DevCredentials | None, credentials_file: Path, readyz: dict[str, Any]
) -> str:
    url = plan.url
    lines = [RULE, f"SomaAgent is ready at {url}/", ""]
    if credentials is None:
        lines.append(f"  web chat & admin  {url}/  (not DEV mode: no development credentials)")
    else:
        key = credentials.api_key
        lines += [
            f"  web chat & admin  {url}/   user {credentials.user}   password {credentials.password}",
            f"  API key           {key}   (tenant {credentials.tenant})",
        ]
    lines.append(f"  model             {_model_line(plan, readyz)}")
    if credentials is not None:
        lines += [
            f"  credentials kept  {credentials_file}",
            "",
            "Try it (the first command answers with the session_id the second one needs):",
            f"  curl -sS -X POST {url}/v1/session/message \\",
            f"    -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\",
            '    -d \'{"message": "Hello!"}\'',
            f"  curl -sS -N -H 'Authorization: Bearer {key}' {url}/v1/sessions/<session_id>/stream",
        ]
    lines += ["", "Ctrl-C stops everything.", RULE]
    return "\n".join(lines) + "\n"
