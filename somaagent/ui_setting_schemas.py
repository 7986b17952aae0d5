"""Settings staff edit in admin (``ui_settings`` rows): typed documents with defaults when absent.

A package registers a key with its defaults and a validator; ``ui_setting_get``
returns the stored document laid over the defaults, and the admin refuses a
document the validator rejects, so a typo never reaches a running turn.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from somaagent.models import UISetting
from somaagent.versioned import config_cache

log = logging.getLogger(__name__)

Validator = Callable[[dict[str, Any]], list[str]]
Defaults = dict[str, Any] | Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class RegisteredSetting:
    default: Defaults
    validate: Validator
    help: str = ""

    @property
    def defaults(self) -> dict[str, Any]:
        """Evaluated on each read when a callable, so defaults may follow the environment."""
        return dict(self.default() if callable(self.default) else self.default)


REGISTRY: dict[str, RegisteredSetting] = {}


def register_ui_setting(key: str, *, defaults: Defaults, validate: Validator, help: str = "") -> None:
    REGISTRY[key] = RegisteredSetting(default=defaults, validate=validate, help=help)


def ui_setting_problems(key: str, document: Any) -> list[str]:
    """What is wrong with ``document`` for ``key`` (empty when it is fine or the key is free-form)."""
    registered = REGISTRY.get(key)
    if registered is None:
        return []
    if not isinstance(document, dict):
        return ["the document must be a JSON object"]
    unknown = sorted(set(document) - set(registered.defaults))
    problems = [f"unknown field {name!r}" for name in unknown]
    return problems + registered.validate({**registered.defaults, **document})


def _stored(key: Any) -> dict[str, Any] | None:
    document = UISetting.objects.filter(key=key).values_list("document", flat=True).first()
    return document if isinstance(document, dict) else None


# Read by every turn (context budget, escalation rules): once per configuration version.
_documents = config_cache("ui_settings", _stored)


def ui_setting_get(key: str) -> dict[str, Any]:
    """The stored document over the registered defaults; an invalid document falls back to them."""
    registered = REGISTRY.get(key)
    defaults = registered.defaults if registered else {}
    document = _documents.get(key)
    if document is None:
        return defaults
    problems = ui_setting_problems(key, document)
    if problems:
        log.warning("ui setting is invalid; using defaults", extra={"key": key, "problems": problems})
        return defaults
    return {**defaults, **document}
