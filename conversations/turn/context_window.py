"""Keeping a turn's prompt inside the model's context: a token estimate and a trimmer.

The prompt is ``[system…, history…, current]``. System messages (persona,
recalled memories, the session summary) and the current message are always
kept; history is kept newest first while it fits the context budget, so
older messages drop out (the session summary stands in for them, see
conversations.services.summary). The history window is loaded with a bounded
query, so the cost of a turn does not grow with the session's length.

The budget is the ``context`` UI setting's ``context_tokens`` (admin → UI
settings), defaulting to ``SOMA_CONTEXT_TOKENS``: staff match it to the
smallest context window among the models that may answer.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from conversations.models import SessionSummary
from somaagent.tokens import estimate_tokens
from somaagent.ui_setting_schemas import register_ui_setting, ui_setting_get

# A message costs its text (about four characters a token for English) plus the
# chat template's framing (role markers, separators).
MESSAGE_OVERHEAD = 4
SUMMARY_PREFIX = "Summary of the earlier part of this conversation:\n"
SETTING_KEY = "context"
MIN_CONTEXT_TOKENS = 256


def _validate(doc: dict[str, Any]) -> list[str]:
    value = doc["context_tokens"]
    if isinstance(value, bool) or not isinstance(value, int) or value < MIN_CONTEXT_TOKENS:
        return [f"context_tokens must be an integer of at least {MIN_CONTEXT_TOKENS}"]
    return []


def context_setting_register() -> None:
    """From ``ConversationsConfig.ready()``: the ``context`` UI setting staff edit in admin."""
    register_ui_setting(
        SETTING_KEY,
        defaults=lambda: {"context_tokens": settings.SOMA.context_tokens},
        validate=_validate,
        help="The prompt's token budget (conversations/turn/context_window.py).",
    )


def context_budget() -> int:
    """Tokens a prompt may take: the ``context`` UI setting, else ``SOMA_CONTEXT_TOKENS``."""
    return int(ui_setting_get(SETTING_KEY)["context_tokens"])


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")


def message_tokens(message: dict[str, Any]) -> int:
    tokens = MESSAGE_OVERHEAD + estimate_tokens(_content_text(message.get("content")))
    for call in message.get("tool_calls") or []:
        tokens += estimate_tokens(str(call))
    return tokens


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    return sum(message_tokens(m) for m in messages)


def context_fit(
    *, messages: list[dict[str, Any]], summary: str = "", budget: int | None = None
) -> list[dict[str, Any]]:
    """Insert the summary after the leading system messages and drop the oldest history to fit."""
    budget = context_budget() if budget is None else budget
    if not messages:
        return []
    lead = 0
    while lead < len(messages) - 1 and messages[lead].get("role") == "system":
        lead += 1
    head = list(messages[:lead])
    if summary:
        head.append({"role": "system", "content": SUMMARY_PREFIX + summary})
    middle = messages[lead:-1]
    current = messages[-1]
    kept_system = [m for m in middle if m.get("role") == "system"]
    spent = prompt_tokens(head) + prompt_tokens(kept_system) + message_tokens(current)
    keep: set[int] = set()
    for index in range(len(middle) - 1, -1, -1):
        message = middle[index]
        if message.get("role") == "system":
            keep.add(index)
            continue
        cost = message_tokens(message)
        if spent + cost > budget:
            break
        spent += cost
        keep.add(index)
    kept = [m for i, m in enumerate(middle) if i in keep or m.get("role") == "system"]
    return [*head, *_drop_orphan_tool_results(kept), current]


def _drop_orphan_tool_results(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A ``tool`` message whose assistant call was trimmed away would be rejected by the model."""
    start = 0
    while start < len(history) and history[start].get("role") == "tool":
        start += 1
    return history[start:]


def session_summary_text(*, session_id: Any) -> str:
    row = SessionSummary.objects.filter(session_id=session_id).only("text").first()
    return row.text if row is not None else ""
