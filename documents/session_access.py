"""Whether a caller may use a chat (session): documents do not import conversations, so the
conversations app registers its check here in ``AppConfig.ready()``. With none registered,
a chat's files are refused (fail closed)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from somaagent.errors import NotFound
from somaagent.identity.principal import Principal

SessionCheck = Callable[[Principal, uuid.UUID], object]  # raises NotFound when not theirs
_check: list[SessionCheck] = []


def register_session_check(check: SessionCheck) -> None:
    _check[:] = [check]


def session_check(*, principal: Principal, session_id: uuid.UUID) -> None:
    if not _check:
        raise NotFound("No such session.")
    _check[0](principal, session_id)
