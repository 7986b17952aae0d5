"""When to call the model again after a failed attempt: bounded, jittered, honouring Retry-After."""

from __future__ import annotations

import random

from django.conf import settings

from conversations.llm.port import LlmError

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 8.0


def llm_retry_delay(error: LlmError, *, retries_done: int, text_received: bool) -> float | None:
    """Seconds to wait before the next attempt, or None to give up with ``error``.

    Only a call that has not streamed any text is retried (the reply would
    otherwise start over under the client's eyes). A ``Retry-After`` longer
    than ``SOMA_LLM_RETRY_AFTER_MAX_SECONDS`` is not waited for in the turn:
    the error reaches the client, who may send again later.
    """
    if text_received or not error.retryable or retries_done >= settings.SOMA.llm_max_retries:
        return None
    if error.retry_after is not None:
        if error.retry_after > settings.SOMA.llm_retry_after_max_seconds:
            return None
        return max(0.0, error.retry_after)
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2**retries_done)
    return ceiling * random.uniform(0.5, 1.0)
