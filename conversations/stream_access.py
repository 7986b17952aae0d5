"""An open stream (SSE or WebSocket) keeps the right to read only while its credentials hold.

Credentials are checked when a stream opens; an open stream then re-checks
them at every heartbeat, and also between events at least once per heartbeat
interval, so a busy stream is checked as often as a quiet one. Lapsed — a
revoked key, a deactivated user, a removed tenant membership, an expired JWT
(``somaagent.identity.principal.principal_lapsed``) — or the session deleted: the
stream sends one final error frame and ends, within a heartbeat or two
(``SOMA_SSE_HEARTBEAT_SECONDS``, 15 s). A check is two indexed lookups at most.

While the database cannot be reached the check cannot be made, and the stream
goes on delivering what Redis holds (a database outage must not cut every open
stream): access last confirmed less than ``GRACE_SECONDS`` (a minute, or four
heartbeat intervals if longer) ago still counts; past that the stream ends with
a 503 ``database_unavailable`` frame, and the client resumes from its cursor.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from django.conf import settings

from conversations.selectors import session_visible
from somaagent.api_errors import error_body, unavailable_database
from somaagent.async_db import db_call
from somaagent.errors import NotFound, SomaError
from somaagent.identity.principal import Principal, principal_lapsed


def access_revoked(*, principal: Principal, session_id: uuid.UUID) -> SomaError | None:
    """Why an open stream must end now, or None (sync: reads the database)."""
    lapsed = principal_lapsed(principal)
    if lapsed is not None:
        return lapsed
    if not session_visible(principal=principal, session_id=session_id):
        return NotFound("The session was deleted.")
    return None


_access_revoked_async = db_call(access_revoked)


def refusal_frame(exc: SomaError) -> dict[str, Any]:
    """The last frame of a stream that lost its access (the WebSocket protocol's error frame)."""
    return {"type": "error", "ref": None, "status": exc.status_code, **error_body(exc.code, exc.message)}


GRACE_SECONDS = 60.0


class StreamAccess:
    """Re-checks one open stream's access: at every heartbeat, and at least once per interval."""

    def __init__(
        self,
        *,
        principal: Principal,
        session_id: uuid.UUID,
        interval: float | None = None,
        grace: float | None = None,
    ) -> None:
        self.principal = principal
        self.session_id = session_id
        self.interval = settings.SOMA.sse_heartbeat_seconds if interval is None else interval
        self.grace = max(GRACE_SECONDS, 4 * self.interval) if grace is None else grace
        self._next_check = time.monotonic() + self.interval
        self._confirmed = time.monotonic()  # when access was last checked and held

    async def refusal(self, *, heartbeat: bool) -> SomaError | None:
        """Why the stream must end before sending what comes next, or None."""
        now = time.monotonic()
        if not heartbeat and now < self._next_check:
            return None
        self._next_check = now + self.interval
        try:
            refused = await _access_revoked_async(principal=self.principal, session_id=self.session_id)
        except Exception as exc:
            down = unavailable_database(exc)
            if down is None:
                raise
            # Cannot check now: keep going on the last confirmation, for a while.
            return down if now - self._confirmed > self.grace else None
        if refused is None:
            self._confirmed = now
        return refused
